/*
 * fw_batch — one nf_tables transaction as netlink messages in memory
 * (pure: building a batch touches nothing; fw_apply.c sends it).
 *
 * Why not text: libnftables parses and evaluates an nft script at about
 * 75 µs per NIC, most of a 10,000-NIC swap; the messages here are what
 * nft would have sent for the same script (the unit test checks that the
 * kernel lists back the same rules and elements either way), built
 * straight from the model with libnftnl.
 *
 * A batch is begin, messages, end; fw_batch_end() seals it.  The
 * messages carry no NLM_F_ACK except the last one: the kernel reports
 * every failed message anyway, and the last acknowledgement says the
 * whole batch was read.  Allocation failures are sticky (b->oom).
 */
#ifndef HC_FW_BATCH_H
#define HC_FW_BATCH_H

#include "net/fw_model.h"

struct fw_batch {
	char *buf;
	size_t len, cap;
	uint32_t seq;               /* of the last message added */
	uint32_t first_seq;         /* of the batch-begin message */
	uint32_t set_id;            /* last NFTNL_SET_ID handed out */
	bool oom;
};

/* seq: the sequence number of the batch-begin message; the others follow. */
void fw_batch_begin(struct fw_batch *b, uint32_t seq);
void fw_batch_free(struct fw_batch *b);
/* Seals the batch; -1 (ENOMEM) when a message could not be added. */
int fw_batch_end(struct fw_batch *b);

/* Removing what is installed, by name (names are checked by the caller). */
void fw_batch_flush_chain(struct fw_batch *b, enum fw_family fam, const char *name);
void fw_batch_del_chain(struct fw_batch *b, enum fw_family fam, const char *name);
void fw_batch_del_set(struct fw_batch *b, enum fw_family fam, const char *name);
/* The whole table, whether it exists or not (created first, then deleted). */
void fw_batch_del_table(struct fw_batch *b, enum fw_family fam);

/* Everything the model holds: both tables (created when absent), every
 * chain (base chains re-declared: a no-op when they are as declared), the
 * counter (kept when it exists), every set with its elements, every rule. */
void fw_batch_model(struct fw_batch *b, const struct fw_model *m);

#endif
