//! The Job controller: keeps up to `parallelism` Pods running until `completions` have
//! succeeded, then marks the Job `Complete` (with `SuccessCriteriaMet`), with its start and
//! completion times and active, ready, succeeded and failed counts.

use serde_json::{Value, json};

use super::replicaset::live_pods;
use super::{
    Cx, condition, controlled_by, is_deleting, name_of, ns_of, pod_from_template, pod_ready,
    set_at, set_condition, str_at, uid_of,
};
use crate::store::now_rfc3339;

/// The component named in the Events this controller records.
const COMPONENT: &str = "job-controller";

fn count(v: &Value, pointer: &str, default: i64) -> i64 {
    v.pointer(pointer)
        .and_then(Value::as_i64)
        .unwrap_or(default)
        .max(0)
}

/// Syncs every Job.
pub(crate) fn reconcile(cx: &mut Cx) {
    for job in cx.list("Job") {
        if !is_deleting(&job) {
            sync(cx, &job);
        }
    }
}

fn sync(cx: &mut Cx, job: &Value) {
    let (ns, name, uid) = (
        ns_of(job).to_owned(),
        name_of(job).to_owned(),
        uid_of(job).to_owned(),
    );
    let completions = count(job, "/spec/completions", 1);
    let parallelism = count(job, "/spec/parallelism", 1);
    let finished: Vec<Value> = cx
        .list_in("Pod", &ns)
        .into_iter()
        .filter(|p| controlled_by(p, &uid) && !is_deleting(p))
        .map(|p| Value::clone(&p))
        .collect();
    let succeeded = finished
        .iter()
        .filter(|p| str_at(p, "/status/phase") == "Succeeded")
        .count();
    let failed = finished
        .iter()
        .filter(|p| str_at(p, "/status/phase") == "Failed")
        .count();
    let complete =
        condition(job, "Complete").is_some_and(|c| c.get("status") == Some(&json!("True")));
    let suspended = job.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true);
    let (mut active, mut taken) = live_pods(cx, job);
    let done = i64::try_from(succeeded).unwrap_or(i64::MAX) >= completions;
    if !done && !complete && !suspended {
        let remaining = usize::try_from(completions)
            .unwrap_or(0)
            .saturating_sub(succeeded);
        let want = usize::try_from(parallelism).unwrap_or(0).min(remaining);
        let template = job
            .pointer("/spec/template")
            .cloned()
            .unwrap_or_else(|| json!({}));
        while active.len() < want {
            let pod_name = Cx::free_name(&name, &taken);
            taken.insert(pod_name.clone());
            let labels = [
                ("batch.kubernetes.io/job-name", name.as_str()),
                ("job-name", name.as_str()),
                ("batch.kubernetes.io/controller-uid", uid.as_str()),
                ("controller-uid", uid.as_str()),
            ];
            let Some(pod) = cx.create("Pod", pod_from_template(job, &template, &pod_name, &labels))
            else {
                break;
            };
            cx.event(
                job,
                COMPONENT,
                "SuccessfulCreate",
                &format!("Created pod: {pod_name}"),
            );
            active.push(pod);
        }
    }
    let now = now_rfc3339();
    let ready = active.iter().filter(|p| pod_ready(p)).count();
    let start = job
        .pointer("/status/startTime")
        .cloned()
        .unwrap_or_else(|| json!(now));
    let wrote = cx.modify("Job", &ns, &name, |o| {
        set_at(o, &["status", "startTime"], start);
        set_at(
            o,
            &["status", "active"],
            json!(if done { 0 } else { active.len() }),
        );
        set_at(o, &["status", "ready"], json!(if done { 0 } else { ready }));
        set_at(o, &["status", "succeeded"], json!(succeeded));
        set_at(o, &["status", "failed"], json!(failed));
        if done {
            if o.pointer("/status/completionTime").is_none() {
                set_at(o, &["status", "completionTime"], json!(now));
            }
            set_condition(
                o,
                "SuccessCriteriaMet",
                "True",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
            );
            set_condition(
                o,
                "Complete",
                "True",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
            );
        }
    });
    if wrote && done && !complete {
        cx.event(job, COMPONENT, "Completed", "Job completed");
    }
}
