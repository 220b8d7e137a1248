/* job_codecs.h — a job's codec set fetch, shared by job_codecs.c (PMS) and job_codecs_url.c (downloads). */

#ifndef AGENT_JOB_CODECS_H
#define AGENT_JOB_CODECS_H

#include <cJSON.h>

#include "job.h"

struct codec_dl;

/* A fetch under way (its set's lock held), from PMS or from a URL. */
struct job_codecs {
	char *want;		/* the set this worker needs */
	unsigned source;	/* AGENT_SRC_PMS or AGENT_SRC_URL */
	char *tmp;		/* fetch folder, while receiving */
	int tmpfd;
	int lockfd;
	int waiting;		/* waited for another job's fetch */
	int receiving;
	uint64_t deadline;
	uint64_t t0;
	uint32_t next;		/* next entry index */
	int fd;			/* the file being received, or -1 */
	char *path;		/* its path in the set */
	uint64_t left;		/* its bytes still to come */
	uint64_t size;
	uint32_t mode;
	struct cpx_sha256_ctx sha;
	uint64_t files, bytes;
	cJSON *entries;		/* the manifest's */

	/* url: PMS's set names the files, the template says where they are. */
	char *offer;		/* PMS's set, whose names are listed */
	char *version;		/* {version} */
	char *arch;		/* {arch} */
	char **libs;		/* files to download */
	uint32_t *modes;
	size_t nlibs, lib;
	struct codec_dl *dl;	/* the download running, or NULL */
};

/* job_codecs.c */
void job_codecs_failed(struct job *j, const char *why);
void job_codecs_done(struct job *j);
void job_codecs_add_entry(struct job_codecs *c, const char *path,
    uint64_t size, const uint8_t sha[32]);

/* job_codecs_url.c */
void job_codecs_url_begin(struct job *j);
int job_codecs_url_entry(struct job *j, const struct cpx_set_entry *e,
    char **why);
int job_codecs_url_listed(struct job *j, char **why);
void job_codecs_url_stop(struct job_codecs *c);
const char *job_codecs_url_current(const struct job_codecs *c);

#endif /* AGENT_JOB_CODECS_H */
