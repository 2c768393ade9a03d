// SPDX-License-Identifier: GPL-2.0
/*
 * mock_kafka - a Kafka cluster for tests and benchmarks: librdkafka's
 * built-in mock cluster (rdkafka_mock.h), N brokers on 127.0.0.1
 * ephemeral ports, driven by commands on stdin.
 *
 *   mock_kafka [BROKERS]          (default 3)
 *
 * Prints the bootstrap list ("127.0.0.1:P1,127.0.0.1:P2,...") as its
 * first line, then answers every command with one line, "ok" or
 * "error: ...". It ends at "quit" or at the end of its stdin.
 *
 *   topic NAME PARTITIONS [RF]     create a topic (RF default 1)
 *   down ID|all                    take a broker (every broker) down
 *   up ID|all                      bring it back
 *   rtt ID|all MS                  add MS ms of round trip
 *   errors APIKEY COUNT ERR        the next COUNT requests of APIKEY (0 is
 *                                  Produce) fail with error code ERR
 *                                  (-195 is a transport error)
 *   leader TOPIC PARTITION ID      move a partition's leader
 *   sleep MS                       wait MS ms before answering
 *
 * The mock keeps at most about 5 MiB or 100,000 batches per partition
 * (older ones are dropped): keep tests below that.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static int broker_id(const char *s, int nr, int *id)
{
	char *end;
	long v;

	if (!strcmp(s, "all")) {
		*id = -1;
		return 0;
	}
	v = strtol(s, &end, 10);
	if (*end || v < 1 || v > nr)
		return -1;
	*id = (int)v;
	return 0;
}

/* Apply @fn to broker @id, or to each broker for -1. */
static rd_kafka_resp_err_t each_broker(rd_kafka_mock_cluster_t *mc, int nr,
				       int id, int rtt,
				       rd_kafka_resp_err_t (*fn)(
					       rd_kafka_mock_cluster_t *,
					       int32_t))
{
	rd_kafka_resp_err_t err = 0;
	int i;

	for (i = id < 0 ? 1 : id; i <= (id < 0 ? nr : id) && !err; i++)
		err = fn ? fn(mc, i) : rd_kafka_mock_broker_set_rtt(mc, i, rtt);
	return err;
}

static int command(rd_kafka_mock_cluster_t *mc, int nr, char *line)
{
	char *argv[8], *save = NULL;
	rd_kafka_resp_err_t err = 0;
	int argc = 0, id, n;

	for (char *t = strtok_r(line, " \t\n", &save); t && argc < 8;
	     t = strtok_r(NULL, " \t\n", &save))
		argv[argc++] = t;
	if (!argc)
		return 0;
	if (!strcmp(argv[0], "quit"))
		return 1;
	if (!strcmp(argv[0], "topic") && (argc == 3 || argc == 4)) {
		err = rd_kafka_mock_topic_create(mc, argv[1], atoi(argv[2]),
						 argc == 4 ? atoi(argv[3]) : 1);
	} else if ((!strcmp(argv[0], "down") || !strcmp(argv[0], "up")) &&
		   argc == 2 && !broker_id(argv[1], nr, &id)) {
		err = each_broker(mc, nr, id, 0,
				  argv[0][0] == 'd' ? rd_kafka_mock_broker_set_down :
						      rd_kafka_mock_broker_set_up);
	} else if (!strcmp(argv[0], "rtt") && argc == 3 &&
		   !broker_id(argv[1], nr, &id)) {
		err = each_broker(mc, nr, id, atoi(argv[2]), NULL);
	} else if (!strcmp(argv[0], "errors") && argc == 4) {
		n = atoi(argv[2]);
		for (int i = 0; i < n; i++) {
			rd_kafka_resp_err_t e = atoi(argv[3]);

			rd_kafka_mock_push_request_errors_array(
				mc, atoi(argv[1]), 1, &e);
		}
	} else if (!strcmp(argv[0], "leader") && argc == 4) {
		err = rd_kafka_mock_partition_set_leader(mc, argv[1],
							 atoi(argv[2]),
							 atoi(argv[3]));
	} else if (!strcmp(argv[0], "sleep") && argc == 2) {
		struct timespec ts = { .tv_sec = atoi(argv[1]) / 1000,
				       .tv_nsec = atoi(argv[1]) % 1000 *
						  1000000L };

		nanosleep(&ts, NULL);
	} else {
		printf("error: unknown command or bad arguments: %s\n",
		       argv[0]);
		return 0;
	}
	if (err)
		printf("error: %s\n", rd_kafka_err2str(err));
	else
		printf("ok\n");
	return 0;
}

int main(int argc, char **argv)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_mock_cluster_t *mc;
	int nr = argc > 1 ? atoi(argv[1]) : 3;
	char errstr[256], line[1024];
	rd_kafka_t *rk;

	if (nr < 1 || nr > 16) {
		fprintf(stderr, "mock_kafka: 1..16 brokers\n");
		return 2;
	}
	rd_kafka_conf_set(conf, "log_level", "0", NULL, 0);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (!rk) {
		fprintf(stderr, "mock_kafka: %s\n", errstr);
		return 1;
	}
	mc = rd_kafka_mock_cluster_new(rk, nr);
	if (!mc) {
		fprintf(stderr, "mock_kafka: cannot create the mock cluster\n");
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
	while (fgets(line, sizeof(line), stdin))
		if (command(mc, nr, line))
			break;
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(rk);
	return 0;
}
