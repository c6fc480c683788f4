/*
 * fw_text — the model as an nft script (pure): what people read, what the
 * golden files hold, and what libnftables parses in the benchmark's
 * baseline.  The kernel never gets this text from hcd: fw_batch.c builds
 * the same ruleset as netlink messages.  Both render one model, and the
 * unit test loads both into throwaway namespaces and compares what the
 * kernel lists back, rule by rule and element by element.
 */
#include "net/fw_model.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *dtype_name(uint8_t dtype)
{
	switch (dtype) {
	case 41: return "ifname";
	case 9:  return "ether_addr";
	case 7:  return "ipv4_addr";
	case 8:  return "ipv6_addr";
	case 12: return "inet_proto";
	case 13: return "inet_service";
	default: return "integer";
	}
}

/* One value of a field, as nft writes it. */
static void value_print(FILE *f, enum fw_field field, const uint8_t *v)
{
	const struct fw_field_desc *d = &fw_fields[field];
	char a[INET6_ADDRSTRLEN];

	switch (d->dtype) {
	case 41:
		fprintf(f, "\"%.16s\"", (const char *)v);
		break;
	case 9:
		fprintf(f, "%02x:%02x:%02x:%02x:%02x:%02x", v[0], v[1], v[2], v[3], v[4], v[5]);
		break;
	case 7:
		fputs(inet_ntop(AF_INET, v, a, sizeof(a)), f);
		break;
	case 8:
		fputs(inet_ntop(AF_INET6, v, a, sizeof(a)), f);
		break;
	case 12:
		fprintf(f, "%u", v[0]);
		break;
	case 13:
		fprintf(f, "%u", (unsigned)v[0] << 8 | v[1]);
		break;
	default:
		fputs("0x", f);
		for (unsigned i = 0; i < d->len; i++)
			fprintf(f, "%02x", v[i]);
	}
}

static void keys_print(FILE *f, unsigned n, const uint8_t *keys)
{
	for (unsigned i = 0; i < n; i++)
		fprintf(f, "%s%s", i ? " . " : "", fw_fields[keys[i]].text);
}

static void set_print(FILE *f, const struct fw_model *m, const struct fw_set *s)
{
	bool map = s->kind == FW_MAP;
	size_t esize = s->interval ? 2u * s->key_len : s->key_len;

	fprintf(f, "\t%s %s-%s {\n\t\t%s ", map ? "map" : "set", s->name, m->version,
		s->by_typeof ? "typeof" : "type");
	for (unsigned i = 0; i < s->n_keys; i++)
		fprintf(f, "%s%s", i ? " . " : "",
			s->by_typeof ? fw_fields[s->keys[i]].text : dtype_name(fw_fields[s->keys[i]].dtype));
	if (map)
		fprintf(f, " : %s", dtype_name(fw_fields[s->data_field].dtype));
	fputc('\n', f);
	if (s->n_elems > 0)          /* see fw_batch.c: the kernel picks the table by it */
		fprintf(f, "\t\tsize %zu\n", s->n_elems);
	if (s->interval)
		fputs("\t\tflags interval\n", f);
	for (size_t j = 0; j < s->n_elems; j++) {
		const uint8_t *e = s->elems + j * esize;
		fputs(j ? ",\n\t\t\t" : "\t\telements = {\n\t\t\t", f);
		for (unsigned i = 0, off = 0; i < s->n_keys; i++) {
			size_t len = fw_fields[s->keys[i]].len;
			fputs(i ? " . " : "", f);
			value_print(f, s->keys[i], e + off);
			/* A range when the field's last value differs from its first. */
			if (s->interval && memcmp(e + off, e + s->key_len + off, len) != 0) {
				fputc('-', f);
				value_print(f, s->keys[i], e + s->key_len + off);
			}
			off += (len + 3u) & ~3u;
		}
		if (map) {
			fputs(" : ", f);
			value_print(f, s->data_field, s->data + j * fw_fields[s->data_field].len);
		}
	}
	fputs(s->n_elems ? "\n\t\t}\n\t}\n" : "\t}\n", f);
}

static void prefix_print(FILE *f, const struct fw_match *x)
{
	char a[INET6_ADDRSTRLEN];
	int af = fw_fields[x->keys[0]].len == 4 ? AF_INET : AF_INET6;

	fprintf(f, "%s/%u", inet_ntop(af, x->value, a, sizeof(a)), x->len);
}

static void match_print(FILE *f, const struct fw_model *m, const struct fw_match *x)
{
	const char *field = fw_fields[x->keys[0]].text, *neq = x->neq ? "!= " : "";

	switch (x->kind) {
	case FW_M_CMP:
		if (x->keys[0] == FW_UDP_PORTS) {      /* two matches, one load */
			fputs(x->text, f);
			return;
		}
		fprintf(f, "%s %s", field, neq);
		if (x->text != NULL)
			fputs(x->text, f);
		else
			value_print(f, x->keys[0], x->value);
		return;
	case FW_M_MASKED:
		fprintf(f, "%s %s", field, x->text);
		return;
	case FW_M_PREFIX:
		fprintf(f, "%s ", field);
		prefix_print(f, x);
		return;
	case FW_M_LOOKUP:
		keys_print(f, x->n_keys, x->keys);
		fprintf(f, " %s@%s-%s", neq, m->sets[x->set].name, m->version);
		return;
	case FW_M_ANON:
		fprintf(f, "%s %s", field, m->sets[x->set].text);
		return;
	case FW_M_IFGLOB:
		fprintf(f, "%s \"%.*s*\"", field, (int)x->len, (const char *)x->value);
		return;
	}
}

static void rule_print(FILE *f, const struct fw_model *m, const struct fw_rule *r)
{
	static const char *const stmt[] = {
		[FW_S_MARK_CLEAR] = "meta mark set meta mark & 0xfcffffff",
		[FW_S_MARK_SET] = "meta mark set meta mark | 0x01000000",
		[FW_S_MARK_CROSS] = "meta mark set meta mark | 0x02000000",
		[FW_S_MASQ] = "masquerade",
		[FW_S_COUNTER] = "counter name \"" FIREWALL_GUEST_DROP "\"",
		[FW_S_DNAT] = "dnat ip to",
		[FW_S_SNAT] = "snat ip to",
	};
	_Static_assert(FIREWALL_MARK_EST == 0x01000000u && FIREWALL_MARK_CROSS == 0x02000000u,
		       "the mark texts follow FIREWALL_MARK_*");
	const char *sep = "";

	fputs("\t\t", f);
	for (uint32_t i = 0; i < r->n; i++, sep = " ") {
		fputs(sep, f);
		match_print(f, m, &m->matches[r->first + i]);
	}
	if (r->stmt == FW_S_DNAT || r->stmt == FW_S_SNAT) {
		const struct fw_set *map = &m->sets[r->stmt_set];
		fprintf(f, "%s%s %s map @%s-%s", sep, stmt[r->stmt], fw_fields[map->keys[0]].text, map->name,
			m->version);
		sep = " ";
	} else if (r->stmt != FW_S_NONE) {
		fprintf(f, "%s%s", sep, stmt[r->stmt]);
		sep = " ";
	}
	switch (r->verdict) {
	case FW_V_ACCEPT: fprintf(f, "%saccept", sep); break;
	case FW_V_DROP:   fprintf(f, "%sdrop", sep); break;
	case FW_V_JUMP:   fprintf(f, "%sjump %s-%s", sep, m->chains[r->target].name, m->version); break;
	case FW_V_GOTO:   fprintf(f, "%sgoto %s-%s", sep, m->chains[r->target].name, m->version); break;
	}
	fputc('\n', f);
}

static void chain_print(FILE *f, const struct fw_model *m, const struct fw_chain *c)
{
	if (c->base != NULL)
		fprintf(f, "\n\tchain %s {\n\t\ttype %s hook %s priority %s; policy accept;\n", c->name,
			c->base->type, c->base->hook, c->base->prio_text);
	else
		fprintf(f, "\n\tchain %s-%s {\n", c->name, m->version);
	for (uint32_t i = 0; i < c->n_rules; i++)
		rule_print(f, m, &m->rules[c->first_rule + i]);
	fputs("\t}\n", f);
}

char *fw_text(const struct fw_model *m)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (f == NULL)
		return NULL;
	fprintf(f, "# hackcloud firewall %s: generated from the store, replaced whole on change\n",
		m->version);
	for (int fam = 0; fam < FW_N_FAMILIES; fam++) {
		fprintf(f, "table %s " FIREWALL_TABLE " {\n", fw_family_name[fam]);
		for (size_t i = 0; i < m->n_sets; i++)
			if (m->sets[i].fam == (enum fw_family)fam && m->sets[i].kind != FW_ANON)
				set_print(f, m, &m->sets[i]);
		/* Unversioned like the base chains: its count survives swaps. */
		if (m->has_counter[fam])
			fputs("\tcounter " FIREWALL_GUEST_DROP " {\n\t}\n", f);
		for (size_t i = 0; i < m->n_chains; i++)
			if (m->chains[i].fam == (enum fw_family)fam)
				chain_print(f, m, &m->chains[i]);
		fputs("}\n", f);
	}
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

char *firewall_ruleset(const struct netstate *ns, char **version)
{
	struct fw_model m;
	char *text;

	if (version != NULL)
		*version = NULL;
	if (fw_generate(ns, &m, NULL) < 0)
		return NULL;
	text = fw_text(&m);
	if (text != NULL && version != NULL && (*version = strdup(m.version)) == NULL) {
		free(text);
		text = NULL;
	}
	fw_model_free(&m);
	return text;
}
