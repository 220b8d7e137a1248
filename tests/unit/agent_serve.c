/* agent_serve.c — what agent serve measures and sends: CPU, jobs, keys, address, bodies. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "serve.h"

static char tmp[] = "/tmp/cpx-agent-serve-test.XXXXXX";

static void
write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

static void
test_cpu(void **state)
{
	struct agent_cpu_sample a, b;

	assert_int_equal(agent_cpu_read("cpu  100 0 100 700 100 0 0 0 0 0\n"
	    "cpu0 1 2 3 4\n", &a), 0);
	assert_int_equal(a.total, 1000);
	assert_int_equal(a.busy, 200);
	assert_int_equal(agent_cpu_read("cpu  300 0 200 900 100 0 0 0 0 0\n",
	    &b), 0);
	/* 300 busy of 500 elapsed. */
	assert_true(agent_cpu_percent(&a, &b) > 59.9 &&
	    agent_cpu_percent(&a, &b) < 60.1);
	assert_true(agent_cpu_percent(&b, &a) == 0);
	assert_int_equal(agent_cpu_read("intr 1 2 3", &a), -EINVAL);
	assert_int_equal(agent_cpu_sample(&a), 0);
	assert_true(a.total > 0);
	assert_true(agent_cpu_bench(2, 20) > 0);
}

static void
test_job_files(void **state)
{
	struct agent_job *jobs, j;
	char dir[256], path[300], text[256];
	size_t n, i;
	pid_t dead;
	int found = 0;

	assert_int_equal(agent_job_parse("{\"id\":\"j1\",\"session\":\"s\","
	    "\"pid\":12,\"started\":1700000000.5}", 59, &j), 0);
	assert_string_equal(j.id, "j1");
	assert_string_equal(j.session, "s");
	assert_int_equal(j.pid, 12);
	free(j.id);
	free(j.session);
	assert_int_equal(agent_job_parse("{\"id\":\"../x\",\"pid\":1}", 22, &j),
	    -EINVAL);
	assert_int_equal(agent_job_parse("{\"id\":\"x\"}", 10, &j), -EINVAL);
	assert_int_equal(agent_job_parse("not json", 8, &j), -EINVAL);

	/* No folder yet: no jobs, no error. */
	assert_int_equal(agent_jobs_scan(tmp, &jobs, &n), 0);
	assert_int_equal(n, 0);
	agent_jobs_free(jobs, n);

	if ((dead = fork()) == 0)
		_exit(0);
	waitpid(dead, NULL, 0);
	snprintf(dir, sizeof dir, "%s/jobs", tmp);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(path, sizeof path, "%s/live.json", dir);
	snprintf(text, sizeof text, "{\"id\":\"live\",\"session\":\"s1\","
	    "\"pid\":%d,\"started\":1700000000}", getpid());
	write_file(path, text, 0600);
	snprintf(path, sizeof path, "%s/stale.json", dir);
	snprintf(text, sizeof text, "{\"id\":\"stale\",\"pid\":%d}", dead);
	write_file(path, text, 0600);
	snprintf(path, sizeof path, "%s/junk.json", dir);
	write_file(path, "{{{", 0600);
	snprintf(path, sizeof path, "%s/other.txt", dir);
	write_file(path, "{\"id\":\"x\",\"pid\":1}", 0600);
	assert_int_equal(agent_jobs_scan(tmp, &jobs, &n), 0);
	for (i = 0; i < n; i++)
		found += strcmp(jobs[i].id, "live") == 0;
	assert_int_equal(n, 1);
	assert_int_equal(found, 1);
	assert_true(jobs[0].started == 1700000000);
	agent_jobs_free(jobs, n);
}

static void
test_host_key_and_address(void **state)
{
	char path[300], *key = NULL, *cause = NULL, *addr = NULL;

	snprintf(path, sizeof path, "%s/key.pub", tmp);
	write_file(path, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey root@w\n",
	    0644);
	assert_int_equal(agent_host_key(path, &key, &cause), 0);
	assert_string_equal(key, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey "
	    "root@w");
	free(key);
	write_file(path, "-----BEGIN OPENSSH PRIVATE KEY-----\n", 0600);
	assert_int_equal(agent_host_key(path, &key, &cause), -EINVAL);
	assert_non_null(strstr(cause, ".pub"));
	free(cause);
	cause = NULL;
	assert_int_equal(agent_local_address("http://127.0.0.1:3500", &addr,
	    &cause), 0);
	assert_string_equal(addr, "127.0.0.1");
	free(addr);
	assert_int_equal(agent_local_address("ftp://x", &addr, &cause),
	    -EINVAL);
	free(cause);
}

static void
test_transcoder_version(void **state)
{
	char path[300], *v;
	uint64_t t0;

	snprintf(path, sizeof path, "%s/ffmpeg", tmp);
	write_file(path, "#!/bin/sh\necho \"ffmpeg version 5.1.6 Copyright\"\n"
	    "echo second line\n", 0755);
	v = agent_transcoder_version(path, 2000);
	assert_string_equal(v, "ffmpeg version 5.1.6 Copyright");
	free(v);
	/* A transcoder that hangs costs the timeout, not more. */
	write_file(path, "#!/bin/sh\nexec sleep 30\n", 0755);
	t0 = cpx_now_ms();
	assert_null(agent_transcoder_version(path, 300));
	assert_true(cpx_now_ms() - t0 < 2000);
	assert_null(agent_transcoder_version("/nonexistent/x", 300));
}

static void
test_bodies(void **state)
{
	struct agent_config cfg = { 0 };
	struct agent_facts f = { 0 };
	struct agent_job jobs[1] = { { "j1", "s1", 5, 1700000000 } };
	char *host = NULL, *cause = NULL, *body;
	cJSON *root;
	int port, drain;

	cfg.name = "w1";
	cfg.ssh_user = "cpx";
	cfg.caps = "vaapi, qsv";
	cfg.labels = "zone=a,gpu=intel";
	cfg.max_tasks = 3;
	cfg.heartbeat_ms = 2000;
	assert_int_equal(agent_ssh_endpoint(&cfg, "10.0.0.5", &host, &port,
	    &cause), 0);
	assert_string_equal(host, "10.0.0.5");
	assert_int_equal(port, 22);
	free(host);
	cfg.ssh_address = "[fd00::5]:2222";
	assert_int_equal(agent_ssh_endpoint(&cfg, "10.0.0.5", &host, &port,
	    &cause), 0);
	assert_string_equal(host, "fd00::5");
	assert_int_equal(port, 2222);
	f.ssh_host = host;
	f.ssh_port = port;
	f.host_key = "ssh-ed25519 AAAA k";
	f.cpus = 8;
	f.bench = 123.5;
	body = agent_reg_body(&cfg, &f, 12.5, 1, jobs, 1);
	root = cJSON_Parse(body);
	assert_non_null(root);
	assert_string_equal(cJSON_GetObjectItem(root, "name")->valuestring,
	    "w1");
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "ssh"),
	    "port")->valueint, 2222);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(root, "caps")),
	    2);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(root,
	    "labels"), "gpu")->valuestring, "intel");
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(root, "drain")));
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(
	    cJSON_GetObjectItem(root, "jobs"), 0), "session")->valuestring, "s1");
	cJSON_Delete(root);
	free(body);
	free(host);
	body = agent_beat_body(&cfg, 40, 1.5, jobs, 1);
	assert_non_null(strstr(body, "\"cpu\":40"));
	assert_non_null(strstr(body, "\"id\":\"j1\""));
	free(body);
	assert_int_equal(agent_parse_drain("{\"drain\":true}", &drain), 0);
	assert_true(drain);
	assert_int_equal(agent_parse_drain("{}", &drain), -EINVAL);
}

static int
make_tmp(void **state)
{
	return mkdtemp(tmp) == NULL;
}

static int
remove_tmp(void **state)
{
	char *cmd = cpx_xprintf("rm -rf '%s'", tmp);
	int r = system(cmd);

	free(cmd);
	return r;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cpu),
		cmocka_unit_test(test_job_files),
		cmocka_unit_test(test_host_key_and_address),
		cmocka_unit_test(test_transcoder_version),
		cmocka_unit_test(test_bodies),
	};

	return cmocka_run_group_tests(tests, make_tmp, remove_tmp);
}
