/* SPDX-License-Identifier: (LGPL-2.1 OR MIT) */
/* readers.h - bringcat's named readers in a file ring (readers.c). */
#ifndef BRING_IO_READERS_H
#define BRING_IO_READERS_H

#include <stdio.h>

#include "bring.h"

void readers_sink_name(const char *const *uris, unsigned int i,
		       char name[BRING_NAME_MAX]);
unsigned int readers_warn_orphans(struct bring *r, const char *path,
				  const char *const *sinks, unsigned int n);
int readers_list(struct bring *r, FILE *f);

#endif
