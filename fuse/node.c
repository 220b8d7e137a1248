/* node.c — the inode table: a node is a name in a parent folder. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cfs.h"

/*
 * Nodes are found by number (every request) and by (parent, name) (every
 * lookup). Paths are built by walking up the parents, so a rename moves
 * a whole subtree by relinking one node. Numbers are never reused, so a
 * stale number from the kernel finds nothing rather than another file.
 */

#define INITIAL_BUCKETS 1024

static size_t
hash_ino(uint64_t ino, size_t nb)
{
	return (size_t)((ino * 0x9E3779B97F4A7C15ull) >> 20) % nb;
}

static size_t
hash_name(uint64_t parent, const char *name, size_t nb)
{
	uint64_t h = 1469598103934665603ull ^ parent;

	while (*name != '\0') {
		h ^= (unsigned char)*name++;
		h *= 1099511628211ull;
	}
	return (size_t)(h % nb);
}

static void
insert_ino(struct cfs *fs, struct cfs_node *n)
{
	size_t b = hash_ino(n->ino, fs->nbuckets);

	n->next_ino = fs->by_ino[b];
	fs->by_ino[b] = n;
}

static void
insert_name(struct cfs *fs, struct cfs_node *n)
{
	size_t b = hash_name(n->parent->ino, n->name, fs->nbuckets);

	n->next_name = fs->by_name[b];
	fs->by_name[b] = n;
}

static void
remove_name(struct cfs *fs, struct cfs_node *n)
{
	struct cfs_node **pp;

	pp = &fs->by_name[hash_name(n->parent->ino, n->name, fs->nbuckets)];
	for (; *pp != NULL; pp = &(*pp)->next_name) {
		if (*pp == n) {
			*pp = n->next_name;
			return;
		}
	}
}

static void
remove_ino(struct cfs *fs, struct cfs_node *n)
{
	struct cfs_node **pp = &fs->by_ino[hash_ino(n->ino, fs->nbuckets)];

	for (; *pp != NULL; pp = &(*pp)->next_ino) {
		if (*pp == n) {
			*pp = n->next_ino;
			return;
		}
	}
}

static struct cfs_node *
get(struct cfs *fs, uint64_t ino)
{
	struct cfs_node *n = fs->by_ino[hash_ino(ino, fs->nbuckets)];

	while (n != NULL && n->ino != ino)
		n = n->next_ino;
	return n;
}

static struct cfs_node *
find(struct cfs *fs, uint64_t parent, const char *name)
{
	struct cfs_node *n = fs->by_name[hash_name(parent, name, fs->nbuckets)];

	while (n != NULL && (n->parent->ino != parent ||
	    strcmp(n->name, name) != 0))
		n = n->next_name;
	return n;
}

static void
grow(struct cfs *fs)
{
	struct cfs_node **old = fs->by_ino, *n, *next;
	size_t i, oldnb = fs->nbuckets;

	fs->nbuckets *= 4;
	fs->by_ino = cpx_xcalloc(fs->nbuckets, sizeof *fs->by_ino);
	free(fs->by_name);
	fs->by_name = cpx_xcalloc(fs->nbuckets, sizeof *fs->by_name);
	for (i = 0; i < oldnb; i++) {
		for (n = old[i]; n != NULL; n = next) {
			next = n->next_ino;
			insert_ino(fs, n);
			if (n->parent != NULL && !n->unlinked)
				insert_name(fs, n);
		}
	}
	free(old);
}

void
cfs_nodes_init(struct cfs *fs)
{
	struct cfs_node *root = cpx_xcalloc(1, sizeof *root);

	pthread_mutex_init(&fs->node_lock, NULL);
	fs->nbuckets = INITIAL_BUCKETS;
	fs->by_ino = cpx_xcalloc(fs->nbuckets, sizeof *fs->by_ino);
	fs->by_name = cpx_xcalloc(fs->nbuckets, sizeof *fs->by_name);
	root->ino = FUSE_ROOT_ID;
	root->name = cpx_xstrdup("");
	root->nlookup = 1;	/* the kernel never forgets the root */
	insert_ino(fs, root);
	fs->nnodes = 1;
	fs->next_ino = FUSE_ROOT_ID + 1;
}

void
cfs_nodes_free(struct cfs *fs)
{
	struct cfs_node *n, *next;
	size_t i;

	for (i = 0; i < fs->nbuckets; i++) {
		for (n = fs->by_ino[i]; n != NULL; n = next) {
			next = n->next_ino;
			free(n->name);
			free(n);
		}
	}
	free(fs->by_ino);
	free(fs->by_name);
	fs->by_ino = fs->by_name = NULL;
	pthread_mutex_destroy(&fs->node_lock);
}

/* Frees n, then any parent that only n kept alive. */
static void
maybe_free(struct cfs *fs, struct cfs_node *n)
{
	struct cfs_node *parent;

	while (n != NULL && n->ino != FUSE_ROOT_ID && n->nlookup == 0 &&
	    n->refs == 0) {
		parent = n->parent;
		remove_ino(fs, n);
		if (!n->unlinked)
			remove_name(fs, n);
		free(n->name);
		free(n);
		fs->nnodes--;
		parent->refs--;
		n = parent;
	}
}

/* Joins the names from the root down; NULL once any of them was removed. */
static char *
build_path(struct cfs_node *n)
{
	struct cfs_node *p;
	size_t len = 0, off;
	char *path;

	for (p = n; p->parent != NULL; p = p->parent) {
		if (p->unlinked)
			return NULL;
		len += strlen(p->name) + 1;
	}
	path = cpx_xmalloc(len + 1);
	off = len;
	path[len] = '\0';
	for (p = n; p->parent != NULL; p = p->parent) {
		size_t l = strlen(p->name);

		off -= l;
		memcpy(path + off, p->name, l);
		if (off > 0)
			path[--off] = '/';
	}
	if (len > 0)
		memmove(path, path + 1, len);	/* drop the leading '/' slot */
	return path;
}

/* The node's path relative to the root ("" for the root); caller frees. */
char *
cfs_node_path(struct cfs *fs, fuse_ino_t ino, int *remote)
{
	struct cfs_node *n;
	char *path = NULL;

	pthread_mutex_lock(&fs->node_lock);
	if ((n = get(fs, ino)) != NULL) {
		path = build_path(n);
		if (remote != NULL)
			*remote = n->remote;
	}
	pthread_mutex_unlock(&fs->node_lock);
	return path;
}

char *
cfs_child_path(const char *dir, const char *name)
{
	if (*dir == '\0')
		return cpx_xstrdup(name);
	return cpx_xprintf("%s/%s", dir, name);
}

/* A lookup's answer: the kernel now holds one more reference to the node. */
fuse_ino_t
cfs_node_learn(struct cfs *fs, fuse_ino_t parent, const char *name,
    int remote)
{
	struct cfs_node *p, *n;
	fuse_ino_t ino = 0;

	pthread_mutex_lock(&fs->node_lock);
	if ((p = get(fs, parent)) == NULL || p->unlinked)
		goto out;
	if ((n = find(fs, parent, name)) == NULL) {
		if (fs->nnodes > 2 * fs->nbuckets)
			grow(fs);
		n = cpx_xcalloc(1, sizeof *n);
		n->ino = fs->next_ino++;
		n->parent = p;
		n->name = cpx_xstrdup(name);
		p->refs++;
		insert_ino(fs, n);
		insert_name(fs, n);
		fs->nnodes++;
	}
	n->nlookup++;
	n->remote = remote;
	ino = n->ino;
out:
	pthread_mutex_unlock(&fs->node_lock);
	return ino;
}

void
cfs_node_forget(struct cfs *fs, fuse_ino_t ino, uint64_t count)
{
	struct cfs_node *n;

	pthread_mutex_lock(&fs->node_lock);
	if ((n = get(fs, ino)) != NULL && n->ino != FUSE_ROOT_ID) {
		n->nlookup -= count < n->nlookup ? count : n->nlookup;
		maybe_free(fs, n);
	}
	pthread_mutex_unlock(&fs->node_lock);
}

/* Open files keep their node (and so its path) alive. */
void
cfs_node_hold(struct cfs *fs, fuse_ino_t ino, int hold)
{
	struct cfs_node *n;

	pthread_mutex_lock(&fs->node_lock);
	if ((n = get(fs, ino)) != NULL) {
		if (hold)
			n->refs++;
		else if (n->refs > 0)
			n->refs--;
		maybe_free(fs, n);
	}
	pthread_mutex_unlock(&fs->node_lock);
}

fuse_ino_t
cfs_node_find(struct cfs *fs, fuse_ino_t parent, const char *name)
{
	struct cfs_node *n;
	fuse_ino_t ino;

	pthread_mutex_lock(&fs->node_lock);
	n = find(fs, parent, name);
	ino = n != NULL ? n->ino : 0;
	pthread_mutex_unlock(&fs->node_lock);
	return ino;
}

/* The node the kernel knows for `path`, or 0. */
fuse_ino_t
cfs_node_find_path(struct cfs *fs, const char *path)
{
	char *copy = cpx_xstrdup(path), *comp, *save = NULL;
	struct cfs_node *n;
	fuse_ino_t ino = FUSE_ROOT_ID;

	pthread_mutex_lock(&fs->node_lock);
	for (comp = strtok_r(copy, "/", &save); comp != NULL && ino != 0;
	    comp = strtok_r(NULL, "/", &save)) {
		n = find(fs, ino, comp);
		ino = n != NULL ? n->ino : 0;
	}
	pthread_mutex_unlock(&fs->node_lock);
	free(copy);
	return ino;
}

static void
unlink_node(struct cfs *fs, struct cfs_node *n)
{
	remove_name(fs, n);
	n->unlinked = 1;
	maybe_free(fs, n);
}

/* After a successful rename: the name moves, whatever it replaced is gone. */
void
cfs_node_moved(struct cfs *fs, fuse_ino_t parent, const char *name,
    fuse_ino_t newparent, const char *newname)
{
	struct cfs_node *n, *target, *np;

	pthread_mutex_lock(&fs->node_lock);
	n = find(fs, parent, name);
	target = find(fs, newparent, newname);
	np = get(fs, newparent);
	if (target != NULL && target != n)
		unlink_node(fs, target);
	if (n != NULL && np != NULL) {
		struct cfs_node *old = n->parent;

		remove_name(fs, n);
		free(n->name);
		n->name = cpx_xstrdup(newname);
		n->parent = np;
		np->refs++;
		insert_name(fs, n);
		old->refs--;
		maybe_free(fs, old);
	}
	pthread_mutex_unlock(&fs->node_lock);
}

void
cfs_node_removed(struct cfs *fs, fuse_ino_t parent, const char *name)
{
	struct cfs_node *n;

	pthread_mutex_lock(&fs->node_lock);
	if ((n = find(fs, parent, name)) != NULL)
		unlink_node(fs, n);
	pthread_mutex_unlock(&fs->node_lock);
}

struct visit {
	fuse_ino_t parent, ino;
	char *name;
};

static int
is_under(const struct cfs_node *n, const struct cfs_node *top)
{
	for (n = n->parent; n != NULL; n = n->parent)
		if (n == top)
			return 1;
	return 0;
}

/*
 * Calls fn for every node below the folder `dir`, outside the lock (fn
 * may queue kernel notifications).
 */
void
cfs_node_walk_under(struct cfs *fs, const char *dir, cfs_node_visit fn,
    void *arg)
{
	fuse_ino_t top = cfs_node_find_path(fs, dir);
	struct visit *v = NULL;
	struct cfs_node *n, *t;
	size_t i, nv = 0;

	if (top == 0)
		return;
	pthread_mutex_lock(&fs->node_lock);
	if ((t = get(fs, top)) != NULL) {
		for (i = 0; i < fs->nbuckets; i++) {
			for (n = fs->by_ino[i]; n != NULL; n = n->next_ino) {
				if (n->unlinked || !is_under(n, t))
					continue;
				v = cpx_xrealloc(v, (nv + 1) * sizeof *v);
				v[nv].parent = n->parent->ino;
				v[nv].ino = n->ino;
				v[nv++].name = cpx_xstrdup(n->name);
			}
		}
	}
	pthread_mutex_unlock(&fs->node_lock);
	for (i = 0; i < nv; i++) {
		fn(fs, v[i].parent, v[i].name, v[i].ino, arg);
		free(v[i].name);
	}
	free(v);
}

/*
 * The kernel caches the pages of a remote file that reads and stores
 * gave it, for the node. At an open, they may stay (1) only if they are
 * of the version `cur` the file has now; otherwise (0) the open drops
 * them. Either way, from then on the kernel holds `cur`.
 */
int
cfs_node_kernel_version(struct cfs *fs, fuse_ino_t ino,
    const struct cpx_attr *cur)
{
	struct cfs_node *n;
	int keep = 0;

	pthread_mutex_lock(&fs->node_lock);
	if ((n = get(fs, ino)) != NULL) {
		keep = n->has_kver && cfs_same_version(&n->kver, cur);
		n->kver = *cur;
		n->has_kver = 1;
	}
	pthread_mutex_unlock(&fs->node_lock);
	return keep;
}

/* The kernel was handed version v of the node's file (notify_store). */
void
cfs_node_stored_version(struct cfs *fs, fuse_ino_t ino,
    const struct cpx_attr *v)
{
	struct cfs_node *n;

	pthread_mutex_lock(&fs->node_lock);
	if ((n = get(fs, ino)) != NULL) {
		n->kver = *v;
		n->has_kver = 1;
	}
	pthread_mutex_unlock(&fs->node_lock);
}
