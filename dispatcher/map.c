/* map.c — a string-keyed hash map whose nodes live inside the values. */

#include <stdlib.h>
#include <string.h>

#include "disp.h"

/*
 * The node is embedded in the worker, job or session it indexes, so
 * adding to the map allocates nothing but the bucket array, and a key is
 * the value's own string.
 */

static uint32_t
hash_str(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s != '\0') {
		h ^= (unsigned char)*s++;
		h *= 16777619u;
	}
	return h;
}

void
disp_map_init(struct disp_map *m)
{
	m->nb = 64;
	m->b = cpx_xcalloc(m->nb, sizeof *m->b);
	m->count = 0;
}

void
disp_map_free(struct disp_map *m)
{
	free(m->b);
	memset(m, 0, sizeof *m);
}

struct disp_hnode *
disp_map_get(const struct disp_map *m, const char *key)
{
	uint32_t h = hash_str(key);
	struct disp_hnode *n;

	for (n = m->b[h & (m->nb - 1)]; n != NULL; n = n->next) {
		if (n->hash == h && strcmp(n->key, key) == 0)
			return n;
	}
	return NULL;
}

static void
grow(struct disp_map *m)
{
	size_t nb = m->nb * 2, i;
	struct disp_hnode **b = cpx_xcalloc(nb, sizeof *b), *n, *next;

	for (i = 0; i < m->nb; i++) {
		for (n = m->b[i]; n != NULL; n = next) {
			next = n->next;
			n->next = b[n->hash & (nb - 1)];
			b[n->hash & (nb - 1)] = n;
		}
	}
	free(m->b);
	m->b = b;
	m->nb = nb;
}

/* Adds n under key (which must outlive n's stay and not be present yet). */
void
disp_map_put(struct disp_map *m, struct disp_hnode *n, const char *key)
{
	size_t i;

	if (m->count + 1 > m->nb)
		grow(m);
	n->key = key;
	n->hash = hash_str(key);
	i = n->hash & (m->nb - 1);
	n->next = m->b[i];
	m->b[i] = n;
	m->count++;
}

void
disp_map_del(struct disp_map *m, struct disp_hnode *n)
{
	struct disp_hnode **pp = &m->b[n->hash & (m->nb - 1)];

	for (; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == n) {
			*pp = n->next;
			n->next = NULL;
			m->count--;
			return;
		}
	}
}
