/* addrkey — see addrkey.h. */
#include "common/addrkey.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

void addr_key(const struct sockaddr *sa, socklen_t len, char out[ADDR_KEY_LEN])
{
	snprintf(out, ADDR_KEY_LEN, "other");
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, ADDR_KEY_LEN);
	} else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		struct in6_addr a = ((const struct sockaddr_in6 *)sa)->sin6_addr;
		char text[INET6_ADDRSTRLEN];

		if (IN6_IS_ADDR_V4MAPPED(&a)) {
			inet_ntop(AF_INET, &a.s6_addr[12], out, ADDR_KEY_LEN);
			return;
		}
		memset(&a.s6_addr[8], 0, 8);
		inet_ntop(AF_INET6, &a, text, sizeof(text));
		/* at most 21 characters: eight groups, the low four zero */
		snprintf(out, ADDR_KEY_LEN, "%.40s/64", text);
	}
}
