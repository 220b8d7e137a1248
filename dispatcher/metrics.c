/* metrics.c — Prometheus text exposition, every name prefixed clusterplex_. */

#include <string.h>

#include "disp.h"

/*
 * Per-worker series are written from the registry itself, so a worker
 * that left or expired has no series at the next scrape.
 */

/* Upper bounds of the placement latency buckets, in microseconds. */
static const uint64_t lat_le_us[DISP_LATENCY_BUCKETS] = {
	10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 50000
};

void
disp_observe_latency(struct disp *d, uint64_t us)
{
	size_t i;

	for (i = 0; i < DISP_LATENCY_BUCKETS; i++) {
		if (us <= lat_le_us[i])
			d->lat_buckets[i]++;
	}
	d->lat_count++;
	d->lat_sum += (double)us / 1e6;
}

static void
head(struct cpx_buf *out, const char *name, const char *type,
    const char *help)
{
	cpx_buf_printf(out, "# HELP clusterplex_%s %s\n# TYPE clusterplex_%s %s\n",
	    name, help, name, type);
}

/* Worker names are [A-Za-z0-9._:-] (msg.c), so they need no label escaping. */
static void
per_worker(struct disp *d, uint64_t now, struct cpx_buf *out)
{
	struct disp_worker *w;
	size_t i;

	head(out, "worker_cpu_percent", "gauge",
	    "CPU load the worker reported, percent of the machine.");
	for (i = 0; i < d->nworkers; i++) {
		w = d->order[i];
		cpx_buf_printf(out, "clusterplex_worker_cpu_percent"
		    "{worker=\"%s\"} %.2f\n", w->ep.name, w->cpu);
	}
	head(out, "worker_tasks", "gauge",
	    "Jobs running or starting on the worker.");
	for (i = 0; i < d->nworkers; i++) {
		w = d->order[i];
		cpx_buf_printf(out, "clusterplex_worker_tasks{worker=\"%s\"} "
		    "%u\n", w->ep.name, w->ntasks);
	}
	head(out, "worker_max_tasks", "gauge",
	    "The worker's concurrency limit.");
	for (i = 0; i < d->nworkers; i++) {
		w = d->order[i];
		cpx_buf_printf(out, "clusterplex_worker_max_tasks"
		    "{worker=\"%s\"} %d\n", w->ep.name, w->max_tasks);
	}
	head(out, "worker_available", "gauge",
	    "1 when the worker takes new jobs (alive, not draining, not "
	    "backing off).");
	for (i = 0; i < d->nworkers; i++) {
		w = d->order[i];
		cpx_buf_printf(out, "clusterplex_worker_available"
		    "{worker=\"%s\"} %d\n", w->ep.name,
		    disp_worker_alive(w, now) && !w->draining &&
		    now >= w->backoff_until);
	}
	head(out, "placements_total", "counter",
	    "Jobs placed, by strategy and worker.");
	for (i = 0; i < d->nworkers; i++) {
		w = d->order[i];
		cpx_buf_printf(out, "clusterplex_placements_total"
		    "{strategy=\"%s\",worker=\"%s\"} %llu\n",
		    disp_strategy_names[d->cfg->strategy], w->ep.name,
		    (unsigned long long)w->placements);
	}
}

static void
latency(struct disp *d, struct cpx_buf *out)
{
	size_t i;

	head(out, "placement_duration_seconds", "histogram",
	    "Time to answer a placement request.");
	for (i = 0; i < DISP_LATENCY_BUCKETS; i++) {
		cpx_buf_printf(out, "clusterplex_placement_duration_seconds_"
		    "bucket{le=\"%g\"} %llu\n", (double)lat_le_us[i] / 1e6,
		    (unsigned long long)d->lat_buckets[i]);
	}
	cpx_buf_printf(out, "clusterplex_placement_duration_seconds_bucket"
	    "{le=\"+Inf\"} %llu\nclusterplex_placement_duration_seconds_sum "
	    "%.6f\nclusterplex_placement_duration_seconds_count %llu\n",
	    (unsigned long long)d->lat_count, d->lat_sum,
	    (unsigned long long)d->lat_count);
}

static void
totals(struct disp *d, uint64_t now, struct cpx_buf *out)
{
	struct cpx_httpd_stats st;
	size_t i, ready = 0;

	for (i = 0; i < d->nworkers; i++)
		ready += disp_worker_alive(d->order[i], now) &&
		    !d->order[i]->draining;
	head(out, "workers", "gauge", "Registered workers.");
	cpx_buf_printf(out, "clusterplex_workers %zu\n", d->nworkers);
	head(out, "workers_ready", "gauge",
	    "Registered workers that are alive and not draining.");
	cpx_buf_printf(out, "clusterplex_workers_ready %zu\n", ready);
	head(out, "jobs_running", "gauge", "Jobs running or starting.");
	cpx_buf_printf(out, "clusterplex_jobs_running %zu\n", d->nrunning);
	head(out, "jobs_total", "counter", "Jobs ended, by outcome.");
	for (i = 0; i < DISP_OUTCOME_MAX_; i++)
		cpx_buf_printf(out, "clusterplex_jobs_total{outcome=\"%s\"} "
		    "%llu\n", disp_outcome_names[i],
		    (unsigned long long)d->outcomes[i]);
	head(out, "placement_failures_total", "counter",
	    "Placement requests answered 503, by reason.");
	for (i = 0; disp_place_fail_names[i] != NULL; i++)
		cpx_buf_printf(out, "clusterplex_placement_failures_total"
		    "{reason=\"%s\"} %llu\n", disp_place_fail_names[i],
		    (unsigned long long)d->place_fail[i]);
	if (d->httpd == NULL)
		return;
	cpx_httpd_get_stats(d->httpd, &st);
	head(out, "http_connections", "gauge", "Open HTTP connections.");
	cpx_buf_printf(out, "clusterplex_http_connections %zu\n", st.open);
	head(out, "http_requests_total", "counter", "HTTP requests answered.");
	cpx_buf_printf(out, "clusterplex_http_requests_total %llu\n",
	    (unsigned long long)st.requests);
	head(out, "http_rejected_total", "counter",
	    "Connections refused or requests rejected by the server (4xx, "
	    "timeouts, over the connection limit).");
	cpx_buf_printf(out, "clusterplex_http_rejected_total %llu\n",
	    (unsigned long long)(st.bad_requests + st.timeouts + st.refused));
}

void
disp_render_metrics(struct disp *d, uint64_t now, struct cpx_buf *out)
{
	totals(d, now, out);
	per_worker(d, now, out);
	latency(d, out);
}
