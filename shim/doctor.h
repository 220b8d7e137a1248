/* doctor.h — `clusterplex-shim doctor`: checks of the whole setup, in plain words. */

#ifndef SHIM_DOCTOR_H
#define SHIM_DOCTOR_H

#include <stddef.h>

#include "shim.h"

enum dr_status { DR_PASS, DR_FAIL, DR_SKIP };

struct dr_check {
	char *id;		/* "worker.host_key" */
	char *target;		/* "dispatcher", "pms", "worker w1" */
	int status;
	char *message;		/* what was found */
	char *fix;		/* what to do, when it failed */
};

struct dr {
	const struct shim_config *cfg;
	char *transcode_dir;
	char *pms_data;		/* PMS's "Plex Media Server" folder, or NULL */
	char *codec_set;	/* the set PMS uses now, or NULL */
	char **media;		/* sample input paths */
	size_t nmedia;
	struct dr_check *v;
	size_t n;
};

/* doctor.c */
void dr_add(struct dr *d, const char *id, const char *target, int status,
    const char *fix, const char *fmt, ...) CPX_PRINTF(6, 7);

/* doctor_local.c: the dispatcher, PMS's settings, the fuse mount. */
struct cJSON *dr_check_dispatcher(struct dr *d);
void dr_check_prefs(struct dr *d);
void dr_check_fuse(struct dr *d);
char *dr_find_codec_set(const char *pms_data);
char *dr_pms_data_dir(void);

/* doctor_xml.c */
int shim_xml_attr(const char *text, size_t len, const char *elem,
    const char *attr, char **value);

/* doctor_worker.c: every registered worker, over SSH, at once. */
void dr_check_workers(struct dr *d, const struct cJSON *workers);

/* inputs.c: sample media for doctor, noted by remote jobs. */
void shim_note_inputs(const struct shim_config *cfg,
    const struct shim_job *job);
char **shim_recent_inputs(const struct shim_config *cfg, size_t *n);

int shim_doctor_main(const struct shim_config *cfg, int argc, char **argv);

#endif /* SHIM_DOCTOR_H */
