// SPDX-License-Identifier: GPL-2.0
/*
 * plain_producer - bench/kafka's baseline: the smallest librdkafka
 * producer that does what bringcat's kafka: sink does for a file of
 * lines, with the same settings, and nothing else (no ring).
 *
 *   plain_producer BROKERS TOPIC FILE [-H] [-X PROP=VALUE]...
 *
 * Each line of FILE (mmapped; zero copy, as the sink produces from ring
 * memory) is one message. -H adds the sink's "bring.pos" header. The
 * settings are the sink's defaults (io/kafka.c): enable.idempotence=true,
 * message.timeout.ms=0, linger.ms=5, batch.num.messages=10000,
 * batch.size=1000000, sticky.partitioning.linger.ms=2,
 * socket.nagle.disable=true; -X overrides. Waits on QUEUE_FULL by polling
 * delivery reports (rd_kafka_poll(rk, 100)), flushes at the end and prints
 * "delivered N failed M".
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

static uint64_t delivered, failed;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
			void *opaque)
{
	if (m->err)
		failed++;
	else
		delivered++;
}

static int set(rd_kafka_conf_t *conf, const char *name, const char *val)
{
	char errstr[256];

	if (rd_kafka_conf_set(conf, name, val, errstr, sizeof(errstr)) ==
	    RD_KAFKA_CONF_OK)
		return 0;
	fprintf(stderr, "plain_producer: %s=%s: %s\n", name, val, errstr);
	return -1;
}

int main(int argc, char **argv)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	const char *p, *end, *nl;
	rd_kafka_topic_t *rkt;
	rd_kafka_resp_err_t err;
	bool header = false;
	char errstr[512], pos[48];
	uint64_t n = 0;
	struct stat st;
	rd_kafka_t *rk;
	int fd, i;

	if (argc < 4) {
		fprintf(stderr, "usage: plain_producer BROKERS TOPIC FILE [-H] [-X PROP=VALUE]...\n");
		return 2;
	}
	if (set(conf, "bootstrap.servers", argv[1]) ||
	    set(conf, "enable.idempotence", "true") ||
	    set(conf, "message.timeout.ms", "0") ||
	    set(conf, "linger.ms", "5") ||
	    set(conf, "batch.num.messages", "10000") ||
	    set(conf, "batch.size", "1000000") ||
	    set(conf, "sticky.partitioning.linger.ms", "2") ||
	    set(conf, "socket.nagle.disable", "true"))
		return 1;
	for (i = 4; i < argc; i++) {
		if (!strcmp(argv[i], "-H")) {
			header = true;
		} else if (!strcmp(argv[i], "-X") && i + 1 < argc) {
			char *eq = strchr(argv[++i], '=');

			if (!eq)
				return 2;
			*eq = '\0';
			if (set(conf, argv[i], eq + 1))
				return 1;
		} else {
			return 2;
		}
	}
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (!rk) {
		fprintf(stderr, "plain_producer: %s\n", errstr);
		return 1;
	}
	rkt = rd_kafka_topic_new(rk, argv[2], NULL);
	fd = open(argv[3], O_RDONLY);
	if (fd < 0 || fstat(fd, &st)) {
		perror(argv[3]);
		return 1;
	}
	p = mmap(NULL, st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return 1;
	for (end = p + st.st_size; p < end; p = nl + 1, n++) {
		nl = memchr(p, '\n', end - p);
		if (!nl)
			nl = end;
		for (;;) {
			if (header) {
				int len = snprintf(pos, sizeof(pos),
						   "%" PRIu64 ":0", n);

				err = rd_kafka_producev(
					rk, RD_KAFKA_V_RKT(rkt),
					RD_KAFKA_V_VALUE((void *)p, (size_t)(nl - p)),
					RD_KAFKA_V_HEADER("bring.pos", pos, len),
					RD_KAFKA_V_END);
			} else {
				err = rd_kafka_producev(
					rk, RD_KAFKA_V_RKT(rkt),
					RD_KAFKA_V_VALUE((void *)p, (size_t)(nl - p)),
					RD_KAFKA_V_END);
			}
			if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
				break;
			rd_kafka_poll(rk, 100); /* reports free room */
		}
		if (err) {
			fprintf(stderr, "plain_producer: %s\n",
				rd_kafka_err2str(err));
			return 1;
		}
		rd_kafka_poll(rk, 0);
	}
	rd_kafka_flush(rk, -1);
	printf("delivered %" PRIu64 " failed %" PRIu64 "\n", delivered,
	       failed);
	rd_kafka_topic_destroy(rkt);
	rd_kafka_destroy(rk);
	return failed || delivered != n;
}
