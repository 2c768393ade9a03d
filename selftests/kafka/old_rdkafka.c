// SPDX-License-Identifier: GPL-2.0
/*
 * A librdkafka.so.1 too old for bring: it has rd_kafka_version() and
 * nothing bring calls. kafka_test puts it first on LD_LIBRARY_PATH to see
 * a kafka: endpoint refused with a clear error (io/kafka.c, rdk_load()).
 */
int rd_kafka_version(void);

int rd_kafka_version(void)
{
	return 0x010000ff; /* 1.0.0 */
}
