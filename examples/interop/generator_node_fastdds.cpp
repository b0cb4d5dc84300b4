// An eProsima Fast DDS (2.x) node on the gridbus bus: it publishes one generator's measurements
// and state and prints the commands gridbus sends it, with the QoS of gridbus_fastdds.xml.
// See docs/interop.md for the build.
//
//   fastddsgen -replace grid.idl        # a copy of idl/grid.idl
//   g++ -std=c++11 -o generator_node_fastdds generator_node_fastdds.cpp grid.cxx \
//       gridPubSubTypes.cxx -lfastrtps -lfastcdr
//   ./generator_node_fastdds G_8 [domain] [count]
//   gridbus subscribe G_8 --json --qos gridbus_qos_by_reception.xml   # in another shell
//   gridbus publish G_8 action=START f_ref=60                          # the node prints it
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include <fastdds/dds/domain/DomainParticipant.hpp>
#include <fastdds/dds/domain/DomainParticipantFactory.hpp>
#include <fastdds/dds/publisher/DataWriter.hpp>
#include <fastdds/dds/publisher/Publisher.hpp>
#include <fastdds/dds/subscriber/DataReader.hpp>
#include <fastdds/dds/subscriber/SampleInfo.hpp>
#include <fastdds/dds/subscriber/Subscriber.hpp>
#include <fastdds/dds/topic/Topic.hpp>
#include <fastdds/dds/topic/TypeSupport.hpp>

#include "gridPubSubTypes.h"

using namespace eprosima::fastdds::dds;

// Fast DDS 2.x refuses BY_SOURCE_TIMESTAMP destination order ("not supported"), which gridbus's
// measurement and state readers request: those gridbus readers must run with a QoS file whose
// readers order by reception (docs/interop.md), or they never match these writers.
static DataWriter* writer_from_profile(Publisher* publisher, Topic* topic, const std::string& profile)
{
    DataWriterQos qos;
    if (publisher->get_datawriter_qos_from_profile(profile, qos) != ReturnCode_t::RETCODE_OK) {
        std::fprintf(stderr, "no profile %s\n", profile.c_str());
        std::exit(1);
    }
    return publisher->create_datawriter(topic, qos);
}

static void print_commands(DataReader* reader, const std::string& id)
{
    grid::Generator::Command command;
    SampleInfo info;
    while (reader->take_next_sample(&command, &info) == ReturnCode_t::RETCODE_OK) {
        if (!info.valid_data || command.id().to_string() != id) {
            continue;                          // the topic carries every generator's commands
        }
        std::printf("command for %s: action=%d mode=%d f_ref=%g P_ref=%g V_ref=%g (NaN = unchanged)\n",
                    id.c_str(), static_cast<int>(command.action()), static_cast<int>(command.mode()),
                    command.f_ref(), command.P_ref(), command.V_ref());
        std::fflush(stdout);
    }
}

int main(int argc, char** argv)
{
    const std::string id = argc > 1 ? argv[1] : "G_8";
    const int domain = argc > 2 ? std::atoi(argv[2]) : 0;
    const int count = argc > 3 ? std::atoi(argv[3]) : 100;

    DomainParticipantFactory* factory = DomainParticipantFactory::get_instance();
    if (factory->load_XML_profiles_file("gridbus_fastdds.xml") != ReturnCode_t::RETCODE_OK) {
        std::fprintf(stderr, "cannot load gridbus_fastdds.xml\n");
        return 1;
    }
    DomainParticipant* participant = factory->create_participant_with_profile(domain, "gridbus_loopback");
    if (participant == nullptr) {
        std::fprintf(stderr, "cannot create the participant\n");
        return 1;
    }
    // Type names are the IDL scoped names (grid::Generator::Measurement), as gridbus uses.
    TypeSupport measurement_type(new grid::Generator::MeasurementPubSubType());
    TypeSupport state_type(new grid::Generator::StatePubSubType());
    TypeSupport command_type(new grid::Generator::CommandPubSubType());
    measurement_type.register_type(participant);
    state_type.register_type(participant);
    command_type.register_type(participant);
    Topic* t_meas = participant->create_topic("Generator_Measurement", measurement_type.get_type_name(),
                                              TOPIC_QOS_DEFAULT);
    Topic* t_state = participant->create_topic("Generator_State", state_type.get_type_name(), TOPIC_QOS_DEFAULT);
    Topic* t_cmd = participant->create_topic("Generator_Command", command_type.get_type_name(), TOPIC_QOS_DEFAULT);
    Publisher* publisher = participant->create_publisher(PUBLISHER_QOS_DEFAULT);
    DataWriter* w_meas = writer_from_profile(publisher, t_meas, "gridbus_measurement");
    DataWriter* w_state = writer_from_profile(publisher, t_state, "gridbus_state");
    // gridbus::command, reader side: reliable, transient-local, destination order by reception
    // (the default, which is also what gridbus's command writers offer).
    Subscriber* subscriber = participant->create_subscriber(SUBSCRIBER_QOS_DEFAULT);
    DataReader* r_cmd = subscriber->create_datareader_with_profile(t_cmd, "gridbus_command_reader");
    if (w_meas == nullptr || w_state == nullptr || r_cmd == nullptr) {
        std::fprintf(stderr, "cannot create the writers\n");
        return 1;
    }

    grid::Generator::State state;
    state.id(id);
    state.status(grid::Generator::RUNNING);     // enums: 32-bit, in declaration order
    state.mode(grid::Generator::POWER);
    state.sync(true);
    state.ready(true);
    w_state->write(&state);                    // write() stamps the source time itself

    grid::Generator::Measurement m;
    m.id(id);
    m.Va(120.0); m.Vb(120.0); m.Vc(120.0);
    m.f(60.0);
    m.speed(1800.0);
    for (int i = 0; i < count; ++i) {
        m.P(400.0 + i);
        m.Q(10.0);
        w_meas->write(&m);
        print_commands(r_cmd, id);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));   // the deadline we offer
    }
    participant->delete_contained_entities();
    factory->delete_participant(participant);
    return 0;
}
