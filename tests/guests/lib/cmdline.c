/*
 * key=value lookup in the boot command line, so a test can parametrise a
 * guest ("count=1000") without rebuilding it. Words are separated by
 * whitespace; no quoting. The last occurrence of a key wins, as for Linux
 * parameters, so a test can append an override.
 */
#include "guest.h"

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

const char *cmdline_find(const char *cmdline, const char *key, size_t *len)
{
	size_t klen = strlen(key);
	const char *found = NULL;
	const char *p = cmdline;

	if (!cmdline)
		return NULL;
	while (*p) {
		const char *word, *end;

		while (is_space(*p))
			p++;
		word = p;
		while (*p && !is_space(*p))
			p++;
		end = p;
		if ((size_t)(end - word) < klen || memcmp(word, key, klen) != 0)
			continue;
		if (word + klen == end) {
			found = end;
			*len = 0;
		} else if (word[klen] == '=') {
			found = word + klen + 1;
			*len = (size_t)(end - found);
		}
	}
	return found;
}

int cmdline_get_u64(const char *cmdline, const char *key, uint64_t *val)
{
	size_t len, i = 0;
	const char *s = cmdline_find(cmdline, key, &len);
	unsigned base = 10;
	uint64_t v = 0;

	if (!s)
		return -GUEST_ENOENT;
	if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		i = 2;
	}
	if (i == len)
		return -GUEST_EINVAL;
	for (; i < len; i++) {
		char c = s[i];
		unsigned d;

		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (base == 16 && c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (base == 16 && c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else
			return -GUEST_EINVAL;
		if (v > (UINT64_MAX - d) / base)
			return -GUEST_EINVAL;
		v = v * base + d;
	}
	*val = v;
	return 0;
}
