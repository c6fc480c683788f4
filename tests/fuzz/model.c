/* model — see model.h. */
#include "model.h"

#include <stdlib.h>
#include <string.h>

/* A NOT NULL column. */
static char *text(struct fuzz_in *in)
{
	char *s = fuzz_line(in);

	return s ? s : fuzz_cstr(NULL, 0);
}

/* A nullable column: an empty or missing line is NULL. */
static char *maybe(struct fuzz_in *in)
{
	char *s = fuzz_line(in);

	if (s && s[0] == '\0') {
		free(s);
		s = NULL;
	}
	return s;
}

static void *table(size_t n, size_t size)
{
	void *p = n ? calloc(n, size) : NULL;

	if (n && p == NULL)
		abort();
	return p;
}

void model_vm(struct fuzz_in *in, struct vm *vm)
{
	memset(vm, 0, sizeof(*vm));
	vm->id = (uint64_t)fuzz_num(in, 0, INT64_MAX);
	vm->name = text(in);
	vm->owner = (uint64_t)fuzz_num(in, 0, INT64_MAX);
	vm->owner_name = maybe(in);
	vm->image = (uint64_t)fuzz_num(in, 0, INT64_MAX);
	vm->image_name = maybe(in);
	vm->cpus = (int)fuzz_num(in, 0, 1024);
	vm->memory_mib = (int)fuzz_num(in, 0, 1 << 24);
	vm->desired = text(in);
	vm->state = text(in);
	vm->host = maybe(in);
	vm->error = maybe(in);
	vm->created = fuzz_num(in, 0, INT64_MAX);
	char *ud = maybe(in);
	if (ud) {
		vm->user_data = (unsigned char *)ud;
		vm->user_data_len = strlen(ud);
	}
	vm->config_drive = fuzz_num(in, 0, 1);
	vm->ephemeral = fuzz_num(in, 0, 1);
	vm->disk_size = fuzz_num(in, 0, INT64_MAX);
	vm->n_nics = (size_t)fuzz_num(in, 0, 4);
	vm->nics = table(vm->n_nics, sizeof(*vm->nics));
	for (size_t i = 0; i < vm->n_nics; i++) {
		struct nic *n = &vm->nics[i];
		n->id = (uint64_t)fuzz_num(in, 0, UINT32_MAX);
		n->network = (uint64_t)fuzz_num(in, 0, 0xffffff);
		n->network_name = maybe(in);
		n->network_ipv6 = maybe(in);
		n->ipv4 = maybe(in);
	}
	vm->n_keys = (size_t)fuzz_num(in, 0, 4);
	vm->keys = table(vm->n_keys, sizeof(*vm->keys));
	for (size_t i = 0; i < vm->n_keys; i++) {
		vm->keys[i].id = i + 1;
		vm->keys[i].name = maybe(in);
		vm->keys[i].fingerprint = maybe(in);
		vm->keys[i].pubkey = maybe(in);
	}
	vm->n_disks = (size_t)fuzz_num(in, 0, 3);
	vm->disks = table(vm->n_disks, sizeof(*vm->disks));
	for (size_t i = 0; i < vm->n_disks; i++)
		vm->disks[i].size = fuzz_num(in, 0, INT64_MAX);
	/* Later fields last, so that older inputs keep their meaning. */
	vm->metadata_tokens_required = fuzz_num(in, 0, 1);
	for (size_t i = 0; i < vm->n_nics; i++) {
		struct nic *n = &vm->nics[i];
		n->public_ipv4 = maybe(in);
		n->n_prefixes = (size_t)fuzz_num(in, 0, 3);
		n->prefixes = table(n->n_prefixes, sizeof(*n->prefixes));
		for (size_t j = 0; j < n->n_prefixes; j++)
			n->prefixes[j] = text(in);
	}
}

void model_image(struct fuzz_in *in, struct image *im)
{
	memset(im, 0, sizeof(*im));
	im->id = (uint64_t)fuzz_num(in, 0, UINT32_MAX);
	im->name = text(in);
	im->owner = (uint64_t)fuzz_num(in, 0, INT64_MAX);
	im->owner_name = maybe(in);
	im->sha256 = maybe(in);
	im->format = text(in);
	im->boot = text(in);
	im->size = fuzz_num(in, 0, INT64_MAX);
	im->cmdline = maybe(in);
	im->has_initrd = fuzz_num(in, 0, 1);
	im->state = text(in);
	im->created = fuzz_num(in, 0, INT64_MAX);
	im->visibility = maybe(in);
	im->source = maybe(in);
	im->import_host = maybe(in);
	im->expect_sha256 = maybe(in);
	im->error = maybe(in);
}

void model_network(struct fuzz_in *in, struct network *n)
{
	memset(n, 0, sizeof(*n));
	n->id = (uint64_t)fuzz_num(in, 0, 0xffffff);
	n->name = text(in);
	n->owner = (uint64_t)fuzz_num(in, 0, INT64_MAX);
	n->owner_name = maybe(in);
	n->ipv6 = text(in);
	n->ipv4 = maybe(in);
	n->created = fuzz_num(in, 0, INT64_MAX);
}
