/*
 * A Cyclone DDS C node on the gridbus bus: it publishes one generator's
 * measurements and state, and prints the commands gridbus sends it.
 *
 * Build (see docs/interop.md):
 *   idlc -l c ../../idl/grid.idl                 # writes grid.c and grid.h here
 *   cc -o generator_node generator_node.c grid.c -lddsc -lm
 * Run on the gridbus loopback configuration:
 *   CYCLONEDDS_URI=file://$PWD/../../qos/cyclonedds-loopback.xml \
 *     ./generator_node G_7 [domain] [partition] [count]
 * and in another shell:
 *   gridbus subscribe G_7 --json
 *   gridbus subscribe G_7 --role State --count 1
 *   gridbus publish G_7 action=START f_ref=60
 *
 * Every QoS policy below is the one gridbus's readers and writers check
 * (qos/gridbus_qos.xml): leave one out and the two sides silently never match.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dds/dds.h"
#include "grid.h"

#define PERIOD DDS_MSECS(100)           /* 10 Hz: the deadline we offer is this period */

static void fail(const char *what, dds_return_t rc)
{
  fprintf(stderr, "generator_node: %s: %s\n", what, dds_strretcode(rc));
  exit(1);
}

static dds_entity_t check(const char *what, dds_entity_t entity)
{
  if (entity < 0)
    fail(what, entity);
  return entity;
}

/* gridbus::measurement, writer side: best effort, volatile, keep last 1, by source
 * timestamp, a deadline no longer than the readers' (1 s; a gridbus controller asks
 * for 0.25 s when it runs the testbed 10x faster), latency budget 0. */
static dds_qos_t *measurement_writer_qos(void)
{
  dds_qos_t *qos = dds_create_qos();
  dds_qset_reliability(qos, DDS_RELIABILITY_BEST_EFFORT, 0);
  dds_qset_durability(qos, DDS_DURABILITY_VOLATILE);
  dds_qset_history(qos, DDS_HISTORY_KEEP_LAST, 1);
  dds_qset_destination_order(qos, DDS_DESTINATIONORDER_BY_SOURCE_TIMESTAMP);
  dds_qset_deadline(qos, PERIOD);
  dds_qset_latency_budget(qos, 0);
  return qos;
}

/* gridbus::state, writer side: reliable, transient-local (late joiners get the
 * newest state, for as long as this writer lives), keep last 1, by source timestamp. */
static dds_qos_t *state_writer_qos(void)
{
  dds_qos_t *qos = dds_create_qos();
  dds_qset_reliability(qos, DDS_RELIABILITY_RELIABLE, DDS_SECS(1));
  dds_qset_durability(qos, DDS_DURABILITY_TRANSIENT_LOCAL);
  dds_qset_history(qos, DDS_HISTORY_KEEP_LAST, 1);
  dds_qset_destination_order(qos, DDS_DESTINATIONORDER_BY_SOURCE_TIMESTAMP);
  dds_qset_latency_budget(qos, 0);
  return qos;
}

/* gridbus::command, reader side: reliable, transient-local, keep last 8, latency
 * budget 0.  gridbus's command writers order by reception time, so a reader that
 * asked for BY_SOURCE_TIMESTAMP here would never match them. */
static dds_qos_t *command_reader_qos(void)
{
  dds_qos_t *qos = dds_create_qos();
  dds_qset_reliability(qos, DDS_RELIABILITY_RELIABLE, DDS_SECS(1));
  dds_qset_durability(qos, DDS_DURABILITY_TRANSIENT_LOCAL);
  dds_qset_history(qos, DDS_HISTORY_KEEP_LAST, 8);
  dds_qset_latency_budget(qos, 0);
  return qos;
}

static void print_commands(dds_entity_t reader, const char *id)
{
  grid_Generator_Command command;
  void *samples[1] = {&command};
  dds_sample_info_t info;
  while (dds_take(reader, samples, &info, 1, 1) > 0) {
    if (!info.valid_data || strcmp(command.id, id) != 0)
      continue;                         /* the topic carries every generator's commands */
    printf("command for %s: action=%d mode=%d f_ref=%g P_ref=%g V_ref=%g (NaN = unchanged)\n",
           command.id, (int)command.action, (int)command.mode,
           command.f_ref, command.P_ref, command.V_ref);
    fflush(stdout);
  }
}

int main(int argc, char **argv)
{
  const char *id = argc > 1 ? argv[1] : "G_7";
  const char *env_domain = getenv("GRIDBUS_DOMAIN");
  dds_domainid_t domain = (dds_domainid_t)atoi(argc > 2 ? argv[2] : env_domain ? env_domain : "0");
  const char *partition = argc > 3 && argv[3][0] ? argv[3] : NULL;
  int count = argc > 4 ? atoi(argv[4]) : 100;
  if (strlen(id) > 32) {
    fprintf(stderr, "generator_node: object id %s is longer than 32 bytes\n", id);
    return 2;
  }

  dds_entity_t participant = check("participant", dds_create_participant(domain, NULL, NULL));
  dds_qos_t *group = NULL;
  if (partition) {                      /* the same partition as `gridbus --partition NAME` */
    group = dds_create_qos();
    dds_qset_partition1(group, partition);
  }
  dds_entity_t publisher = check("publisher", dds_create_publisher(participant, group, NULL));
  dds_entity_t subscriber = check("subscriber", dds_create_subscriber(participant, group, NULL));
  if (group)
    dds_delete_qos(group);

  /* Topic names are <Module>_<Role>; the type names inside the descriptors idlc
   * generated are the IDL scoped names gridbus uses (grid::Generator::Measurement). */
  dds_entity_t t_meas = check("topic", dds_create_topic(participant, &grid_Generator_Measurement_desc,
                                                        "Generator_Measurement", NULL, NULL));
  dds_entity_t t_state = check("topic", dds_create_topic(participant, &grid_Generator_State_desc,
                                                         "Generator_State", NULL, NULL));
  dds_entity_t t_cmd = check("topic", dds_create_topic(participant, &grid_Generator_Command_desc,
                                                       "Generator_Command", NULL, NULL));

  dds_qos_t *qos = measurement_writer_qos();
  dds_entity_t w_meas = check("measurement writer", dds_create_writer(publisher, t_meas, qos, NULL));
  dds_delete_qos(qos);
  qos = state_writer_qos();
  dds_entity_t w_state = check("state writer", dds_create_writer(publisher, t_state, qos, NULL));
  dds_delete_qos(qos);
  qos = command_reader_qos();
  dds_entity_t r_cmd = check("command reader", dds_create_reader(subscriber, t_cmd, qos, NULL));
  dds_delete_qos(qos);

  /* State once, on change; enums are 32-bit values in declaration order. */
  grid_Generator_State state = {.status = grid_Generator_RUNNING, .mode = grid_Generator_POWER,
                                .sync = true, .ready = true};
  snprintf(state.id, sizeof state.id, "%s", id);
  dds_return_t rc = dds_write(w_state, &state);
  if (rc < 0)
    fail("writing state", rc);

  grid_Generator_Measurement m = {.Va = 120.0, .Vb = 120.0, .Vc = 120.0, .f = 60.0, .speed = 1800.0};
  snprintf(m.id, sizeof m.id, "%s", id);
  for (int i = 0; i < count; i++) {
    m.P = 300.0 + i;                    /* W */
    m.Q = 20.0;                         /* var */
    m.Ia = m.Ib = m.Ic = m.P / (3.0 * m.Va);
    m.angle = fmod(0.01 * i, 6.283185307179586);
    /* dds_write stamps the source time itself (dds_time(), UTC ns): gridbus reads it
     * as Sample.source_time.  Use dds_write_ts only for data measured earlier. */
    if ((rc = dds_write(w_meas, &m)) < 0)
      fail("writing measurement", rc);
    print_commands(r_cmd, id);
    dds_sleepfor(PERIOD);
  }
  print_commands(r_cmd, id);
  /* Deleting the participant unregisters G_x: its transient-local state is gone
   * with this process (gridbus's late joiners then get nothing for it). */
  dds_delete(participant);
  return 0;
}
