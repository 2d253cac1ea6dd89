//! The CronJob controller: a Job from `spec.jobTemplate` at each time of `spec.schedule`
//! (standard 5-field cron and the `@hourly`-style macros, in `spec.timeZone` or UTC), named
//! `<cronjob>-<scheduled time in minutes since the epoch>` as Kubernetes names them, controlled
//! by the CronJob and annotated with its scheduled time. Schedules follow the controllers' wall
//! clock, which [`crate::Sim::advance_clock`] moves forward for tests and demos.
//!
//! As the real controller does with `startingDeadlineSeconds` unset, missed runs are not
//! replayed: only the most recent time due since `status.lastScheduleTime` (or since the
//! controller first saw the CronJob) starts a Job, found directly rather than by counting the
//! missed ones; with `startingDeadlineSeconds`, a run later than that is skipped. `spec.suspend`
//! starts none; `concurrencyPolicy` `Forbid` starts none while a Job runs (the run waits until
//! it ends) and `Replace` deletes the running ones first. Finished Jobs beyond
//! `successfulJobsHistoryLimit` (default 3) and `failedJobsHistoryLimit` (default 1) are deleted,
//! oldest first. The status lists the running Jobs (`active`), `lastScheduleTime` and
//! `lastSuccessfulTime` (the latest successful Job's `completionTime`, a store timestamp on the
//! real clock).

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::{
    Cx, condition, controlled_by, is_deleting, name_of, ns_of, owner_ref, set_at, str_at, uid_of,
};

/// The component named in the Events this controller records.
const COMPONENT: &str = "cronjob-controller";

/// The annotation holding a Job's scheduled time.
pub const SCHEDULED_AT: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// Parses a 5-field cron schedule (or a macro such as `@hourly`); `None` when it is not one.
#[must_use]
pub fn parse_schedule(schedule: &str) -> Option<Cron> {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(schedule)
        .ok()
}

/// Syncs every CronJob.
pub(crate) fn reconcile(cx: &mut Cx) {
    for cj in cx.list("CronJob") {
        if !is_deleting(&cj) {
            sync(cx, &cj);
        }
    }
}

/// Whether a Job has the condition `ty` set to `True`.
fn has(job: &Value, ty: &str) -> bool {
    condition(job, ty).is_some_and(|c| c.get("status") == Some(&json!("True")))
}

fn finished(job: &Value) -> bool {
    has(job, "Complete") || has(job, "Failed")
}

/// A Job's scheduled time: its annotation, else its creation time.
fn scheduled(job: &Value) -> Option<Timestamp> {
    let annotation = str_at(
        job,
        &format!("/metadata/annotations/{}", SCHEDULED_AT.replace('/', "~1")),
    );
    let at = if annotation.is_empty() {
        str_at(job, "/metadata/creationTimestamp")
    } else {
        annotation
    };
    at.parse().ok()
}

/// A reference to `job` as `status.active` lists it.
fn job_ref(job: &Value) -> Value {
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": name_of(job),
        "namespace": ns_of(job),
        "uid": uid_of(job),
        "resourceVersion": str_at(job, "/metadata/resourceVersion"),
    })
}

fn limit(cj: &Value, field: &str, default: i64) -> usize {
    let n = cj
        .pointer(&format!("/spec/{field}"))
        .and_then(Value::as_i64)
        .unwrap_or(default);
    usize::try_from(n).unwrap_or(0)
}

fn delete_job(cx: &mut Cx, cj: &Value, job: &Value) {
    if cx.delete("Job", ns_of(job), name_of(job)) {
        let msg = format!("Deleted job {}", name_of(job));
        cx.event(cj, COMPONENT, "SuccessfulDelete", &msg);
    }
}

/// `at` in RFC 3339 with `zone`'s offset, `Z` for a zero offset (as Go formats it).
fn rfc3339_in(at: Timestamp, zone: &TimeZone) -> String {
    let text = at
        .to_zoned(zone.clone())
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string();
    match text.strip_suffix("+00:00") {
        Some(utc) => format!("{utc}Z"),
        None => text,
    }
}

/// The Job of `cj` scheduled at `at` (shown in `zone`).
fn new_job(cj: &Value, at: Timestamp, zone: &TimeZone) -> Value {
    let template = cj
        .pointer("/spec/jobTemplate")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut meta = json!({});
    for field in ["labels", "annotations"] {
        if let Some(v) = template.pointer(&format!("/metadata/{field}")) {
            set_at(&mut meta, &[field], v.clone());
        }
    }
    let name = format!("{}-{}", name_of(cj), at.as_second().div_euclid(60));
    set_at(&mut meta, &["name"], json!(name));
    set_at(&mut meta, &["namespace"], json!(ns_of(cj)));
    set_at(&mut meta, &["ownerReferences"], json!([owner_ref(cj)]));
    set_at(
        &mut meta,
        &["annotations", SCHEDULED_AT],
        json!(rfc3339_in(at, zone)),
    );
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": template.get("spec").cloned().unwrap_or_else(|| json!({})),
    })
}

/// The most recent scheduled time in `(after, now]`, and the next one after `now`.
fn due(
    cron: &Cron,
    zone: &TimeZone,
    after: Timestamp,
    now: Timestamp,
) -> (Option<Timestamp>, Option<Timestamp>) {
    let now_z = now.to_zoned(zone.clone());
    let last = cron
        .find_previous_occurrence(&now_z, true)
        .ok()
        .map(|z| z.timestamp())
        .filter(|t| *t > after);
    let next = cron
        .find_next_occurrence(&now_z, false)
        .ok()
        .map(|z| z.timestamp());
    (last, next)
}

fn sync(cx: &mut Cx, cj: &Value) {
    let (ns, name, uid) = (
        ns_of(cj).to_owned(),
        name_of(cj).to_owned(),
        uid_of(cj).to_owned(),
    );
    let first_seen = cx.first_seen(&format!("cronjob/{uid}"));
    let mut jobs: Vec<Value> = cx
        .list_in("Job", &ns)
        .into_iter()
        .filter(|j| controlled_by(j, &uid) && !is_deleting(j))
        .map(|j| Value::clone(&j))
        .collect();
    jobs.sort_by_key(|j| (scheduled(j), name_of(j).to_owned()));

    // History: the oldest finished Jobs beyond the limits.
    for (ty, field, default) in [
        ("Complete", "successfulJobsHistoryLimit", 3),
        ("Failed", "failedJobsHistoryLimit", 1),
    ] {
        let done: Vec<&Value> = jobs.iter().filter(|j| has(j, ty)).collect();
        let extra = done.len().saturating_sub(limit(cj, field, default));
        let old: Vec<Value> = done.into_iter().take(extra).cloned().collect();
        for job in &old {
            delete_job(cx, cj, job);
        }
        jobs.retain(|j| !old.iter().any(|o| name_of(o) == name_of(j)));
    }

    let mut last_schedule = str_at(cj, "/status/lastScheduleTime")
        .parse::<Timestamp>()
        .ok();
    let suspended = cj.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true);
    let cron = parse_schedule(str_at(cj, "/spec/schedule"));
    let zone = match str_at(cj, "/spec/timeZone") {
        "" => Some(TimeZone::UTC),
        tz => TimeZone::get(tz).ok(),
    };
    if let (Some(cron), Some(zone)) = (cron, zone) {
        let now = cx.wall();
        let (run, next) = due(&cron, &zone, last_schedule.unwrap_or(first_seen), now);
        if let Some(next) = next {
            cx.wake_at(next);
        }
        let deadline = cj
            .pointer("/spec/startingDeadlineSeconds")
            .and_then(Value::as_i64)
            .map(SignedDuration::from_secs);
        let too_late = |at: Timestamp| deadline.is_some_and(|d| at.duration_until(now) > d);
        if let Some(at) = run.filter(|at| !suspended && !too_late(*at)) {
            let running: Vec<Value> = jobs.iter().filter(|j| !finished(j)).cloned().collect();
            let policy = str_at(cj, "/spec/concurrencyPolicy");
            if policy != "Forbid" || running.is_empty() {
                if policy == "Replace" {
                    for job in &running {
                        delete_job(cx, cj, job);
                    }
                    jobs.retain(finished);
                }
                let job = new_job(cj, at, &zone);
                let job_name = name_of(&job).to_owned();
                if let Some(created) = cx.create("Job", job) {
                    let msg = format!("Created job {job_name}");
                    cx.event(cj, COMPONENT, "SuccessfulCreate", &msg);
                    jobs.push(created);
                    last_schedule = Some(at);
                } else if cx.get("Job", &ns, &job_name).is_some() {
                    // Already started (this run was seen before its status was written).
                    last_schedule = Some(at);
                }
            }
        }
    }

    let active: Vec<Value> = jobs.iter().filter(|j| !finished(j)).map(job_ref).collect();
    let last_success = jobs
        .iter()
        .filter(|j| has(j, "Complete"))
        .filter_map(|j| j.pointer("/status/completionTime").and_then(Value::as_str))
        .filter_map(|t| t.parse::<Timestamp>().ok())
        .chain(
            str_at(cj, "/status/lastSuccessfulTime")
                .parse::<Timestamp>()
                .ok(),
        )
        .max();
    cx.modify("CronJob", &ns, &name, |o| {
        set_at(o, &["status", "active"], json!(active));
        if let Some(t) = last_schedule {
            set_at(o, &["status", "lastScheduleTime"], json!(t.to_string()));
        }
        if let Some(t) = last_success {
            set_at(o, &["status", "lastSuccessfulTime"], json!(t.to_string()));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn schedules_parse_five_fields_and_macros_only() {
        assert!(parse_schedule("*/5 * * * *").is_some());
        assert!(parse_schedule("@hourly").is_some());
        assert!(parse_schedule("0 */5 * * * *").is_none());
        assert!(parse_schedule("not a schedule").is_none());
    }

    #[test]
    fn only_the_latest_missed_run_is_due() {
        let cron = parse_schedule("0 * * * *").unwrap();
        let utc = TimeZone::UTC;
        let (run, next) = due(
            &cron,
            &utc,
            at("2025-01-01T00:30:00Z"),
            at("2025-01-01T05:10:00Z"),
        );
        assert_eq!(run, Some(at("2025-01-01T05:00:00Z")));
        assert_eq!(next, Some(at("2025-01-01T06:00:00Z")));
        let (run, _) = due(
            &cron,
            &utc,
            at("2025-01-01T05:00:00Z"),
            at("2025-01-01T05:10:00Z"),
        );
        assert_eq!(run, None);
    }

    #[test]
    fn jobs_are_named_by_minutes_since_the_epoch() {
        let cj = json!({"metadata": {"name": "nightly", "namespace": "ns", "uid": "u"}, "kind": "CronJob", "apiVersion": "batch/v1",
            "spec": {"jobTemplate": {"metadata": {"labels": {"a": "b"}}, "spec": {"template": {}}}}});
        let job = new_job(&cj, at("2025-01-01T00:00:00Z"), &TimeZone::UTC);
        assert_eq!(job["metadata"]["name"], "nightly-28928160");
        assert_eq!(job["metadata"]["labels"]["a"], "b");
        assert_eq!(
            job["metadata"]["annotations"][SCHEDULED_AT],
            "2025-01-01T00:00:00Z"
        );
        assert_eq!(job["metadata"]["ownerReferences"][0]["kind"], "CronJob");
    }

    #[test]
    fn scheduled_times_show_the_zone_offset() {
        let t = at("2025-07-01T10:00:00Z");
        assert_eq!(rfc3339_in(t, &TimeZone::UTC), "2025-07-01T10:00:00Z");
        let paris = TimeZone::get("Europe/Paris").unwrap();
        assert_eq!(rfc3339_in(t, &paris), "2025-07-01T12:00:00+02:00");
    }
}
