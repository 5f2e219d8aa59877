//! The timeslot lifecycle against a simulated CML worker, over HTTP, on virtual time: a booked
//! slot becomes a running lab on the worker with its ports; at its end the lab is collected,
//! the grading result comes in through the inbox, and the lab is stopped, wiped and deleted
//! with its capacity given back. Termination from a running state cleans up the same way; CML
//! failing for a while only delays the lab.

use chrono::{DateTime, Duration as Minutes, Utc};
use lablet_application::ports::{Clock, ManualClock};
use lablet_cml_simulator::RunningSimulator;
use lablet_tests::fleet::{register_worker, start_simulator, until, until_within};
use lablet_tests::TestServer;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// A Lablet on a manual clock that a ticker moves 100 ms every 10 ms (everything that waits on
/// the clock runs ten times faster than real time), with workers each on a simulator of its own.
struct Lab {
    simulators: Vec<RunningSimulator>,
    server: TestServer,
    clock: Arc<ManualClock>,
    ticker: tokio::task::JoinHandle<()>,
    workers: Vec<String>,
}

impl Lab {
    async fn start(workers: usize, cores: u32) -> Lab {
        let clock = Arc::new(ManualClock::starting_at(Utc::now()));
        let server = TestServer::start_with_clock(
            |s| {
                s.fleet.monitoring_interval = Duration::from_millis(500);
                s.scheduler.every = Duration::from_millis(200);
                s.lifecycle.enabled = true;
                s.lifecycle.every = Duration::from_millis(200);
                s.executors.concurrency = 8;
                s.work_order_tick = Duration::from_millis(200);
            },
            clock.clone() as Arc<dyn Clock>,
        )
        .await;
        let ticker = {
            let clock = clock.clone();
            tokio::spawn(async move {
                loop {
                    clock.advance(Duration::from_millis(100));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
        };
        let (mut simulators, mut ids) = (Vec::new(), Vec::new());
        for n in 0..workers {
            let simulator = start_simulator().await;
            ids.push(register_worker(&server, &simulator, &format!("cml-{n}"), cores).await);
            simulators.push(simulator);
        }
        for worker in &ids {
            until(&server, &format!("/api/v1/workers/{worker}"), |w| {
                w["service_status"] == "available"
            })
            .await;
        }
        Lab {
            simulators,
            server,
            clock,
            ticker,
            workers: ids,
        }
    }

    fn simulator(&self) -> &RunningSimulator {
        &self.simulators[0]
    }

    /// Books `reservation` of `definition`, starting 10 minutes from now on the clock, for 45.
    async fn book(
        &self,
        definition: &lablet_tests::server::ActiveDefinition,
        reservation: &str,
    ) -> (String, DateTime<Utc>) {
        let start = self.clock.now() + Minutes::minutes(10);
        let end = start + Minutes::minutes(45);
        let body = json!({
            "definition_id": definition.id, "definition_version": definition.version,
            "owner_id": "alice", "reservation_id": reservation,
            "timeslot_start": start, "timeslot_end": end,
        });
        let (status, created, _) = self.server.post("/api/v1/instances", &body).await;
        assert_eq!(status, 201, "{created}");
        (created["id"].as_str().unwrap().to_owned(), end)
    }

    async fn instance(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        until_within(
            &self.server,
            &format!("/api/v1/instances/{id}"),
            Duration::from_secs(60),
            done,
        )
        .await
    }

    /// The labs titled for `instance` on every simulator: (id, state).
    fn labs_of(&self, instance: &str) -> Vec<(String, String)> {
        let titled = format!("lablet-{instance}");
        self.simulators
            .iter()
            .flat_map(|simulator| {
                simulator
                    .labs()
                    .into_iter()
                    .filter(|(id, _)| simulator.lab_title(id).as_deref() == Some(titled.as_str()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Every lab on every simulator.
    fn all_labs(&self) -> usize {
        self.simulators.iter().map(|simulator| simulator.labs().len()).sum()
    }

    /// Posts a CloudEvent from the grading system to the inbox.
    async fn grading_says(&self, id: &str, event_type: &str, data: Value) {
        let event = json!({"specversion": "1.0", "id": id, "source": "/assessment",
                           "type": format!("io.lablet.assessment.{event_type}"), "data": data});
        let (status, answer) = self
            .server
            .post_raw("/api/v1/events", "application/cloudevents+json", &event.to_string())
            .await;
        assert_eq!(status, 202, "{answer}");
    }

    async fn stop(self) {
        self.ticker.abort();
        self.server.stop().await;
        for simulator in self.simulators {
            simulator.stop().await;
        }
    }
}

fn event_types(instance: &Value) -> Vec<String> {
    let history = instance["operation_history"].as_array().cloned().unwrap_or_default();
    history
        .iter()
        .filter_map(|entry| entry["event_type"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booked_slot_runs_is_graded_and_leaves_nothing_behind() {
    let lab = Lab::start(1, 16).await;
    let definition = lab.server.active_definition("ospf").await;
    let (id, _) = lab.book(&definition, "r-1").await;

    // Placed within the lead time, imported and started on the worker: running, with its lab
    // and its ports.
    let running = lab.instance(&id, |i| i["state"] == "running").await;
    let lab_id = running["lab_id"].as_str().expect("the lab id is recorded").to_owned();
    assert_eq!(running["worker_id"], lab.workers[0].as_str());
    assert!(running["ports"]["console"].is_u64(), "{running}");
    assert_eq!(lab.labs_of(&id), vec![(lab_id.clone(), "STARTED".to_owned())]);

    // At the end of the slot: collected for grading (a CloudEvent for the grading system).
    lab.clock.advance(Duration::from_secs(56 * 60));
    let collecting = lab
        .instance(&id, |i| {
            i["state"] == "collecting" && !i["assessment_requested_at"].is_null()
        })
        .await;
    assert_eq!(collecting["state_reason"], "the timeslot ended");

    // The grading system answers through the inbox: graded, then the lab goes.
    lab.grading_says(
        "c-1",
        "collection.completed",
        json!({"instance_id": id, "collection_id": "col-1"}),
    )
    .await;
    lab.grading_says(
        "g-1",
        "grading.completed",
        json!({"instance_id": id, "score": {"total": 9, "max": 10}, "passed": true}),
    )
    .await;
    let ended = lab.instance(&id, |i| i["state"] == "terminated").await;
    assert_eq!(ended["score"]["total"], 9.0);
    assert_eq!(ended["lab_removed"], true, "{ended}");
    assert!(lab.labs_of(&id).is_empty(), "the lab is gone from the worker");
    until(&lab.server, &format!("/api/v1/workers/{}", lab.workers[0]), |w| {
        w["allocations"].as_object().is_some_and(|a| a.is_empty()) && w["allocated_capacity"]["cpu_cores"] == 0
    })
    .await;

    // The history shows the pipeline, each step once.
    let types = event_types(&ended);
    let steps = types.iter().filter(|t| *t == "lablet_instance.step_recorded").count();
    assert_eq!(steps, 6, "import, start, collect, stop, wipe, delete: {types:?}");
    for expected in [
        "lablet_instance.scheduled",
        "lablet_instance.instantiation_started",
        "lablet_instance.started",
        "lablet_instance.collection_started",
        "lablet_instance.assessment_requested",
        "lablet_instance.grading_started",
        "lablet_instance.score_recorded",
        "lablet_instance.stopping",
        "lablet_instance.stopped",
        "lablet_instance.archived",
        "lablet_instance.terminated",
    ] {
        assert_eq!(
            types.iter().filter(|t| *t == expected).count(),
            1,
            "{expected}: {types:?}"
        );
    }
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_running_instance_leaves_no_lab_and_cml_failing_for_a_while_only_delays() {
    let lab = Lab::start(1, 16).await;
    let definition = lab.server.active_definition("bgp").await;
    // CML refuses every lab import for a while: the import is retried with backoff.
    let fault = json!({"path_prefix": "/api/v0/import", "fail_status": 503});
    let response = lab
        .server
        .client
        .put(format!("{}/_control/faults", lab.simulator().url()))
        .json(&json!([fault]))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let (id, _) = lab.book(&definition, "r-2").await;
    let order = format!(
        "/api/v1/work-orders/{}",
        lablet_domain::work_order::unique_order_id(&format!("lab.import:{id}"))
    );
    let retried = until_within(&lab.server, &order, Duration::from_secs(60), |o| {
        o["errors"].as_array().is_some_and(|e| !e.is_empty())
    })
    .await;
    assert!(
        retried["errors"][0]["error"].as_str().unwrap().contains("503"),
        "{retried}"
    );
    lab.server
        .client
        .delete(format!("{}/_control/faults", lab.simulator().url()))
        .send()
        .await
        .unwrap();
    let running = lab.instance(&id, |i| i["state"] == "running").await;
    let lab_id = running["lab_id"].as_str().unwrap().to_owned();
    assert_eq!(lab.labs_of(&id).len(), 1, "one lab, however many attempts");

    // Ended by its owner while running: the lab is stopped, wiped and deleted all the same.
    let (status, _, _) = lab
        .server
        .post(
            &format!("/api/v1/instances/{id}/transitions"),
            &json!({"to": "terminated", "reason": "done early"}),
        )
        .await;
    assert_eq!(status, 200);
    let ended = lab.instance(&id, |i| i["lab_removed"] == true).await;
    assert_eq!(ended["state"], "terminated");
    assert!(lab.labs_of(&id).is_empty(), "lab {lab_id} is gone");
    lab.stop().await;
}

/// Fifty reservations of one timeslot over five workers that hold exactly fifty: every one runs
/// with a lab of its own, and at the end every lab is gone and every worker empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_overlapping_reservations_over_five_workers_run_and_leave_nothing() {
    let lab = Lab::start(5, 40).await;
    let definition = lab.server.active_definition("ccna").await;
    let mut ids = Vec::new();
    for n in 0..50 {
        ids.push(lab.book(&definition, &format!("r-{n:02}")).await.0);
    }
    let mut labs = std::collections::BTreeSet::new();
    for id in &ids {
        let running = lab.instance(id, |i| i["state"] == "running").await;
        assert!(
            labs.insert(running["lab_id"].as_str().unwrap().to_owned()),
            "a lab twice"
        );
        assert_eq!(lab.labs_of(id).len(), 1, "{id} has one lab");
    }
    assert_eq!(lab.all_labs(), 50);

    lab.clock.advance(Duration::from_secs(56 * 60));
    for (n, id) in ids.iter().enumerate() {
        lab.instance(id, |i| !i["assessment_requested_at"].is_null()).await;
        lab.grading_says(
            &format!("c-{n}"),
            "collection.completed",
            json!({"instance_id": id, "collection_id": format!("col-{n}")}),
        )
        .await;
        lab.grading_says(
            &format!("g-{n}"),
            "grading.completed",
            json!({"instance_id": id, "score": {"total": n, "max": 50}, "passed": n >= 25}),
        )
        .await;
    }
    for id in &ids {
        let ended = lab
            .instance(id, |i| i["state"] == "terminated" && i["lab_removed"] == true)
            .await;
        assert!(ended["score"]["total"].is_number(), "{ended}");
    }
    assert_eq!(lab.all_labs(), 0, "every lab is gone");
    for worker in &lab.workers {
        until(&lab.server, &format!("/api/v1/workers/{worker}"), |w| {
            w["allocations"].as_object().is_some_and(|a| a.is_empty())
        })
        .await;
    }
    lab.stop().await;
}

/// A step CML refuses for good ends the instance with the error as its reason; an extension
/// moves the end the lifecycle collects at.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_step_ends_the_instance_and_an_extension_moves_its_end() {
    let lab = Lab::start(1, 16).await;
    let definition = lab.server.active_definition("isis").await;
    let faults = format!("{}/_control/faults", lab.simulator().url());
    let refused = json!([{"path_prefix": "/api/v0/import", "fail_status": 400}]);
    lab.server.client.put(&faults).json(&refused).send().await.unwrap();
    let (doomed, _) = lab.book(&definition, "r-refused").await;
    let ended = lab.instance(&doomed, |i| i["state"] == "terminated").await;
    let reason = ended["state_reason"].as_str().unwrap();
    assert!(reason.starts_with("lab.import failed: CML answered 400"), "{reason}");
    assert_eq!(ended["last_step"]["outcome"], "failed", "{ended}");
    assert!(lab.labs_of(&doomed).is_empty());
    lab.server.client.delete(&faults).send().await.unwrap();

    let (id, end) = lab.book(&definition, "r-extended").await;
    lab.instance(&id, |i| i["state"] == "running").await;
    let new_end = end + Minutes::minutes(30);
    let (status, answer, _) = lab
        .server
        .post(
            &format!("/api/v1/instances/{id}/timeslot"),
            &json!({"timeslot_end": new_end}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    // Past the first end, it runs on.
    lab.clock.advance(Duration::from_secs(60 * 60));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, still) = lab.server.get(&format!("/api/v1/instances/{id}")).await;
    assert_eq!(still["state"], "running", "{still}");
    // Past the new end, it is collected.
    lab.clock.advance(Duration::from_secs(30 * 60));
    let collecting = lab.instance(&id, |i| i["state"] == "collecting").await;
    assert_eq!(collecting["state_reason"], "the timeslot ended");
    lab.stop().await;
}
