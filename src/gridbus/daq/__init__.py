"""The DAQ agent of the paper's embedded board: sample, compute, publish, obey.

Layers, as on the board: a sampling back end (:mod:`.backend`: an ADC, or the
simulated one here) yields raw three-phase waveforms; :mod:`.dsp` turns each
cycle into RMS values, P, Q, frequency and phasors with numpy; :mod:`.agent`
publishes them and forwards received commands to the back end's outputs.
"""
