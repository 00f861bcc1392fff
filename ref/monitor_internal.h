/* SPDX-License-Identifier: MIT */
/*
 * monitor_internal.h - what the monitor's files share (private to ref/monitor*.c):
 * the monitor's state, owned by the loop thread (see vmmswap/monitor.h for who
 * owns what), and the functions one concern offers the others.
 */
#ifndef VMMSWAP_MONITOR_INTERNAL_H
#define VMMSWAP_MONITOR_INTERNAL_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <vmmswap/fault_server.h>
#include <vmmswap/file_truncator.h>
#include <vmmswap/monitor.h>
#include <vmmswap/page_handler.h>
#include <vmmswap/protocol.h>
#include <vmmswap/status.h>

#define QUEUE_MAX 32
#define MAX_EPOLL 64

enum tok_kind { TOK_CMD = 1, TOK_JOB, TOK_SIG, TOK_VMM, TOK_UFFD, TOK_PIDFD };
#define TOKEN(kind, idx) (((uint64_t)(kind) << 32) | (uint32_t)(idx))

#define JOB_NONE (-1) /* job.kind when no job ran since the last one ended */

/* One process whose address space the monitor serves. */
struct uffd_ent {
	int fd;	   /* -1: free slot */
	int pidfd; /* -1 for the VMM (its death ends the monitor) */
	bool registered;
	struct vms_fault_server fs; /* its events: the event-loop rule, faults kept */
};

/* A command waiting its turn; it owns reply_fd. */
struct queued {
	struct vms_msg_cmd msg;
	int reply_fd;
	int state; /* state on receipt, for the reply */
};

struct job {
	int kind;     /* enum vms_sm_job, or JOB_NONE */
	bool running; /* thread created and not yet joined (loop thread only) */
	pthread_t thread;
	atomic_bool abort;
	atomic_bool release; /* test hook: an Exit lets a held job run */
	atomic_uint_fast64_t pages;
	int64_t start_ms;
	int uffd;     /* swap-in: a dup owned by the job */
	int result;   /* written by the job before it signals; read after the join */
	bool aborted; /* likewise */
	struct vms_monitor *m;
};

struct vms_monitor {
	const struct vms_monitor_config *cfg;
	int epfd, jobfd, sigfd, vmm_pidfd;
	bool cmd_open;
	int state;		     /* enum vms_swap_state as reported */
	struct vms_page_handler *ph; /* non-NULL while enabled */
	struct uffd_ent *u;
	size_t nu;
	struct job job;
	struct vms_swap_transition trans; /* record when no job runs */
	struct queued q[QUEUE_MAX];
	size_t qhead, qn;
	struct queued parked; /* waits for the move or an abort to end */
	bool have_parked;
	struct queued enable_cmd; /* the Enable whose move runs */
	bool have_enable;
	struct queued exit_cmd; /* the Exit waiting for the swap-in */
	bool exit_after_swap_in;
	bool slow_cleanup;
	/*
	 * The previous swap file while a slow file cleanup shrinks it (state Ready only;
	 * NULL otherwise). last_cleanup: how the last one ended, for Info.
	 */
	struct vms_truncator *trunc;
	struct vms_truncator_info last_cleanup;
	uint64_t uffd_reads, uffd_events; /* Info counters */
	bool pinned; /* the loop thread runs on cfg->fault_cpu; jobs get orig_cpus */
	cpu_set_t orig_cpus;
	bool should_exit;
	pthread_mutex_t gate; /* swap-in chunk vs reading REMOVE events (handle_uffd) */
};

/* monitor_sandbox.c */
int vms_mon_sandbox(void);

/* monitor_uffd_list.c */
int vms_mon_ep_add(struct vms_monitor *m, int fd, uint64_t token);
int vms_mon_add_uffd(struct vms_monitor *m, int fd, int pidfd, size_t *idx_out);
void vms_mon_drop_uffd(struct vms_monitor *m, size_t i);
bool vms_mon_pidfd_dead(int pidfd);
int vms_mon_register_uffd(struct vms_monitor *m, size_t i);
void vms_mon_unregister_uffd(struct vms_monitor *m, size_t i);
void vms_mon_process_forked(struct vms_monitor *m, int *fds);
void vms_mon_handle_uffd(struct vms_monitor *m, size_t i);

/* monitor_status.c */
void vms_mon_fill_status(struct vms_monitor *m, struct vms_swap_status *st);
void vms_mon_fill_info(struct vms_monitor *m, struct vms_monitor_info *info);

/* monitor_jobs.c */
int vms_mon_start_job(struct vms_monitor *m, int kind);

/* monitor_cleanup.c */
void vms_mon_start_cleanup(struct vms_monitor *m);
void vms_mon_stop_cleanup(struct vms_monitor *m);

/* monitor_enable.c */
int vms_mon_enable_from_ready(struct vms_monitor *m);
void vms_mon_finish_disable(struct vms_monitor *m);

/* monitor_commands.c */
void vms_mon_reply_and_close(struct queued *c, int result, int new_state, int err);
void vms_mon_job_done(struct vms_monitor *m);
void vms_mon_handle_commands(struct vms_monitor *m);

#endif /* VMMSWAP_MONITOR_INTERNAL_H */
