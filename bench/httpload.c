/*
 * httpload — a small closed-loop HTTP/1.1 load generator for the unix
 * socket (wrk speaks TCP only): C connections, each a thread sending
 * GET PATH with keep-alive and waiting for the whole answer before the
 * next.  Prints one line: requests, req/s, p50 and p99 latency (µs), and
 * the count of answers that were not 200.
 *
 * usage: httpload TARGET PATH SECONDS CONNECTIONS [TOKEN]
 *   TARGET is a unix socket's path, or tcp:IPV4:PORT (a metadata probe
 *   from a guest's namespace, bench/loop.sh).
 *   HTTPLOAD_PAUSE_US=N: each connection waits N µs between requests
 *   (a probe that measures latency rather than saturating the server).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Latency buckets: 10 µs up to 100 ms, then 1 ms up to a minute. */
#define FINE 10000
#define BUCKETS (FINE + 60000)

static size_t bucket_of(double us)
{
	size_t b = us < FINE * 10 ? (size_t)(us / 10) : FINE + (size_t)((us - FINE * 10) / 1000);

	return b < BUCKETS ? b : BUCKETS - 1;
}

static double us_of(size_t b)
{
	return b < FINE ? (double)b * 10 : FINE * 10 + (double)(b - FINE) * 1000;
}

struct worker {
	const char *sock, *path, *token;
	double seconds;
	long pause_us;
	uint64_t requests, errors;
	uint64_t *hist;
	pthread_t t;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int dial(const char *target)
{
	struct sockaddr_un su = { .sun_family = AF_UNIX };
	struct sockaddr_in si = { .sin_family = AF_INET };
	struct sockaddr *sa = (struct sockaddr *)&su;
	socklen_t len = sizeof(su);
	int fd;

	if (strncmp(target, "tcp:", 4) == 0) {
		char host[64];
		const char *colon = strrchr(target + 4, ':');
		size_t n = colon ? (size_t)(colon - (target + 4)) : 0;
		if (colon == NULL || n >= sizeof(host)) {
			fprintf(stderr, "%s: not tcp:IPV4:PORT\n", target);
			exit(2);
		}
		memcpy(host, target + 4, n);
		host[n] = '\0';
		si.sin_port = htons((uint16_t)atoi(colon + 1));
		if (inet_pton(AF_INET, host, &si.sin_addr) != 1) {
			fprintf(stderr, "%s: not an IPv4 address\n", host);
			exit(2);
		}
		sa = (struct sockaddr *)&si;
		len = sizeof(si);
	} else {
		snprintf(su.sun_path, sizeof(su.sun_path), "%s", target);
	}
	fd = socket(sa->sa_family, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, sa, len) < 0) {
		perror(target);
		exit(1);
	}
	return fd;
}

/* Read one answer; its status, or -1 when the connection ended. */
static int answer(int fd, char *buf, size_t cap)
{
	size_t got = 0;
	char *end = NULL;

	while (end == NULL) {
		ssize_t n = read(fd, buf + got, cap - 1 - got);
		if (n <= 0)
			return -1;
		got += (size_t)n;
		buf[got] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	int status = atoi(buf + 9);
	const char *cl = strcasestr(buf, "\r\nContent-Length:");
	size_t body = cl ? strtoul(cl + 17, NULL, 10) : 0;
	size_t have = got - (size_t)(end + 4 - buf);
	while (have < body) {
		ssize_t n = read(fd, buf, cap < body - have ? cap : body - have);
		if (n <= 0)
			return -1;
		have += (size_t)n;
	}
	return status;
}

static void *run(void *arg)
{
	struct worker *w = arg;
	char req[512], buf[65536];
	int len, fd = dial(w->sock);
	double end = now_s() + w->seconds;

	len = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: hc\r\n%s%s%s\r\n", w->path,
		       w->token ? "Authorization: Bearer " : "", w->token ? w->token : "",
		       w->token ? "\r\n" : "");
	for (double t0 = now_s(); t0 < end; t0 = now_s()) {
		if (write(fd, req, (size_t)len) != len) {
			close(fd);
			fd = dial(w->sock);
			continue;
		}
		int status = answer(fd, buf, sizeof(buf));
		if (status < 0) {
			close(fd);
			fd = dial(w->sock);
			w->errors++;
			continue;
		}
		double us = (now_s() - t0) * 1e6;
		w->hist[bucket_of(us)]++;
		w->requests++;
		w->errors += status != 200;
		if (w->pause_us > 0)
			nanosleep(&(struct timespec){ .tv_sec = w->pause_us / 1000000,
						      .tv_nsec = w->pause_us % 1000000 * 1000 }, NULL);
	}
	close(fd);
	return NULL;
}

static double percentile(const uint64_t *hist, uint64_t total, double p)
{
	uint64_t want = (uint64_t)((double)total * p), seen = 0;

	for (size_t b = 0; b < BUCKETS; b++) {
		seen += hist[b];
		if (seen >= want && seen > 0)
			return us_of(b);
	}
	return us_of(BUCKETS - 1);
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: httpload SOCKET|tcp:IPV4:PORT PATH SECONDS CONNECTIONS [TOKEN]\n");
		return 2;
	}
	int n = atoi(argv[4]);
	double seconds = atof(argv[3]);
	struct worker *w = calloc((size_t)n, sizeof(*w));
	uint64_t *hist = calloc(BUCKETS, sizeof(*hist)), total = 0, errors = 0;
	const char *pause = getenv("HTTPLOAD_PAUSE_US");

	for (int i = 0; i < n; i++) {
		w[i] = (struct worker){ .sock = argv[1], .path = argv[2], .seconds = seconds,
					.token = argc > 5 ? argv[5] : NULL,
					.pause_us = pause ? atol(pause) : 0,
					.hist = calloc(BUCKETS, sizeof(uint64_t)) };
		pthread_create(&w[i].t, NULL, run, &w[i]);
	}
	for (int i = 0; i < n; i++) {
		pthread_join(w[i].t, NULL);
		for (size_t b = 0; b < BUCKETS; b++)
			hist[b] += w[i].hist[b];
		total += w[i].requests;
		errors += w[i].errors;
		free(w[i].hist);
	}
	printf("requests=%llu rps=%.0f p50_us=%.0f p99_us=%.0f errors=%llu\n",
	       (unsigned long long)total, (double)total / seconds, percentile(hist, total, 0.50),
	       percentile(hist, total, 0.99), (unsigned long long)errors);
	free(hist);
	free(w);
	return 0;
}
