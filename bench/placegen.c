/*
 * placegen — placement throughput of the store, for bench/cluster.sh.
 * Not part of the product.
 *
 *   placegen [-H HOSTS] [-n VMS] [-m SAMPLE] STORE_URI STATE_DIR
 *
 * Registers HOSTS hosts (3) in an empty store, then places VMs the way
 * the API's create does (store_vm_create_placed: choose the host and
 * insert the VM with one NIC, in one transaction).  It measures two
 * things, SAMPLE times each (200), first in the empty store and again
 * once VMS VMs (1,000) are in it:
 *
 *   decide   store_place alone: the scheduler's choice, nothing written
 *   place    store_vm_create_placed: the choice and the VM it creates
 *
 * and prints one line per measurement, "<what> <VMs in the store before
 * it> <per s>", then how many VMs each host got and the memory they ask
 * for ("spread h1=N/MIB …").  VM sizes cycle through 128…1024 MiB so
 * that the spread has something to weigh.
 */
#include "store/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "placegen: %s failed (%d)\n", what, rc);
	exit(1);
}

static const int sizes[] = { 128, 256, 512, 1024, 256, 128, 768 };

struct run {
	struct store *st;
	uint64_t image, net;
	size_t made;          /* VMs created so far: their names and sizes */
};

static struct placement policy(size_t i)
{
	/* Every host stays fresh for the whole run: the heartbeats that
	 * would keep them so are not what is measured. */
	return (struct placement){ .cpus = 1, .memory_mib = sizes[i % (sizeof(sizes) / sizeof(*sizes))],
				   .cpu_ratio = 4.0, .now = (int64_t)time(NULL), .fresh = 1 << 30 };
}

static double decide(struct run *r, size_t n)
{
	double t0 = now_s();

	for (size_t i = 0; i < n; i++) {
		struct placement p = policy(r->made + i);
		char *host = NULL;
		int rc = store_place(r->st, &p, &host);
		if (rc != STORE_OK)
			die("store_place", rc);
		free(host);
	}
	return (double)n / (now_s() - t0);
}

static double place(struct run *r, size_t n)
{
	double t0 = now_s();

	for (size_t i = 0; i < n; i++, r->made++) {
		char name[32];
		snprintf(name, sizeof(name), "p%06zu", r->made);
		struct placement p = policy(r->made);
		struct vm vm = { .name = name, .owner = OWNER_ROOT, .image = r->image,
				 .cpus = p.cpus, .memory_mib = p.memory_mib, .desired = "stopped",
				 .state = "stopped" };
		int rc = store_vm_create_placed(r->st, &vm, &r->net, 1, &p);
		if (rc != STORE_OK)
			die("store_vm_create_placed", rc);
	}
	return (double)n / (now_s() - t0);
}

/* Both figures with as many VMs in the store as there are now. */
static void measure(struct run *r, size_t sample)
{
	size_t before = r->made;
	double d = decide(r, sample);
	double p = place(r, sample);

	printf("decide %zu %.0f\nplace %zu %.0f\n", before, d, before, p);
}

static void setup(struct run *r, int n_hosts)
{
	for (int i = 1; i <= n_hosts; i++) {
		char name[16], addr[32];
		snprintf(name, sizeof(name), "h%d", i);
		snprintf(addr, sizeof(addr), "fd00:ca5c::%d", i);
		/* Room for every VM of the run on any host: capacity never decides. */
		struct host h = { .name = name, .address = addr, .cpus = 4096,
				  .memory_mib = 16 * 1024 * 1024, .accel = "kvm" };
		int rc = store_host_register(r->st, &h);
		if (rc != STORE_OK)
			die("store_host_register", rc);
	}
	struct image im = { .name = "bench", .owner = OWNER_ROOT, .format = "kernel",
			    .boot = "kernel", .cmdline = "console=ttyS0" };
	int rc = store_image_create(r->st, &im);
	if (rc == STORE_OK)
		rc = store_image_finalize(r->st, im.id, "0000000000000000000000000000000000000000000000000000000000000000",
					  "kernel", 4096);
	if (rc != STORE_OK)
		die("image", rc);
	r->image = im.id;
	struct network net = { .name = "bench", .owner = OWNER_ROOT, .ipv6 = "fd00:be:c1::/64" };
	rc = store_network_create(r->st, &net);
	if (rc != STORE_OK)
		die("network", rc);
	r->net = net.id;
}

static void spread(struct run *r)
{
	struct host *v = NULL;
	size_t n = 0;
	int rc = store_host_list(r->st, &v, &n);

	if (rc != STORE_OK)
		die("store_host_list", rc);
	printf("spread");
	for (size_t i = 0; i < n; i++)
		printf(" %s=%d/%" PRId64 "MiB", v[i].name, v[i].vms, v[i].used_mib);
	printf("\n");
	hosts_free(v, n);
}

int main(int argc, char **argv)
{
	int n_hosts = 3, opt;
	size_t n_vms = 1000, sample = 200;
	struct run r = { 0 };
	char *err = NULL;

	while ((opt = getopt(argc, argv, "H:n:m:")) != -1) {
		switch (opt) {
		case 'H': n_hosts = atoi(optarg); break;
		case 'n': n_vms = (size_t)strtoul(optarg, NULL, 10); break;
		case 'm': sample = (size_t)strtoul(optarg, NULL, 10); break;
		default:
			fprintf(stderr, "usage: placegen [-H HOSTS] [-n VMS] [-m SAMPLE] STORE_URI STATE_DIR\n");
			return 2;
		}
	}
	if (argc - optind != 2 || n_hosts < 1 || sample == 0 || n_vms < sample) {
		fprintf(stderr, "usage: placegen [-H HOSTS] [-n VMS] [-m SAMPLE] STORE_URI STATE_DIR\n");
		return 2;
	}
	r.st = store_open(argv[optind], argv[optind + 1], &err);
	if (r.st == NULL) {
		fprintf(stderr, "placegen: store: %s\n", err ? err : "cannot open");
		free(err);
		return 1;
	}
	setup(&r, n_hosts);

	measure(&r, sample);
	place(&r, n_vms - r.made);
	measure(&r, sample);
	spread(&r);
	store_close(r.st);
	return 0;
}
