"""The EMS of the closed loop: weighted-least-squares state estimation with bad-data detection.

* :mod:`.model` — measurement functions ``h(x)`` and their Jacobian;
* :mod:`.wls` — Gauss-Newton WLS, chi-square test, largest normalised residual;
* :mod:`.snapshot` — bus values (SI, per object) to ``z`` and ``σ`` (per unit);
* :mod:`.service` — ``gridbus ems``: readers, newest values, ``Estimate_State``.

The network model comes from the ANDES case (the ``andes`` extra), as a
control centre's model comes from its planning data.
"""
