/*
 * tree — what the metadata service answers for one VM and one path.
 * Pure (unit tested): the VM as the store has it in, a status, a body and
 * a content type out.  Serves the EC2 layout (/latest/meta-data/…,
 * /latest/user-data, and the dated versions cloud-init asks for) and the
 * OpenStack one (/openstack/latest/meta_data.json, user_data,
 * network_data.json, and dated versions).
 */
#ifndef HC_METADATA_TREE_H
#define HC_METADATA_TREE_H

#include "store/store.h"

#include <stddef.h>

struct md_reply {
	int status;            /* 200 or 404 */
	char *body;            /* malloc'd; may hold NUL bytes (user data) */
	size_t len;
	const char *type;      /* content type */
};

/* Render path for vm; returns reply.status.  Free reply.body. */
int metadata_render(const struct vm *vm, const char *path, struct md_reply *reply);

#endif
