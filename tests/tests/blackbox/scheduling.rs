//! The scheduler against simulated CML workers: reservations due within the lead time are
//! placed fullest-first with their capacity and ports allocated on the worker, never beyond a
//! worker's capacity nor a port twice; one nothing can take stays pending with its reason and a
//! capacity request; one still pending after its start is expired; an ended one gives its
//! capacity and ports back.

use chrono::{Duration as Minutes, Utc};
use lablet_cml_simulator::RunningSimulator;
use lablet_tests::fleet::{register_worker, start_simulator, until};
use lablet_tests::server::{definition_request, get_json, TestServer};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// A simulated CML server, and a Lablet that monitors workers and schedules every 100 ms.
async fn fleet_server() -> (RunningSimulator, TestServer) {
    let simulator = start_simulator().await;
    let server = TestServer::start_with(|s| {
        s.fleet.monitoring_interval = Duration::from_millis(200);
        s.scheduler.every = Duration::from_millis(100);
    })
    .await;
    (simulator, server)
}

/// A definition needing `cores` cores, 3 nodes and two ports, active.
async fn definition(server: &TestServer, name: &str, cores: u32) -> (String, String) {
    let dir = &server.settings.data_dir;
    let active = server.active_definition(name).await;
    let mut body = definition_request(name, "1.1.0");
    body["spec"] = json!({
        "artifact_uri": format!("file://{}", dir.join(format!("{name}.yaml")).display()),
        "topology_sha256": get_json(&server.client, &server.url(&format!("/api/v1/definitions/{}", active.id))).await
            ["versions"][0]["topology_sha256"],
        "resources": {"cpu_cores": cores, "memory_gb": 8, "storage_gb": 20},
        "node_count": 3,
        "ports": [{"name": "console", "protocol": "tcp"}, {"name": "ssh", "protocol": "tcp"}],
    });
    body.as_object_mut().unwrap().remove("name");
    let (status, _, _) = server
        .post(&format!("/api/v1/definitions/{}/versions", active.id), &body)
        .await;
    assert_eq!(status, 200);
    until(server, &format!("/api/v1/definitions/{}", active.id), |d| {
        d["active_version"] == "1.1.0"
    })
    .await;
    (active.id, "1.1.0".into())
}

async fn request(server: &TestServer, definition: &(String, String), reservation: &str, starts_in: i64) -> String {
    let start = Utc::now() + Minutes::minutes(starts_in);
    let body = json!({
        "definition_id": definition.0, "definition_version": definition.1,
        "owner_id": "alice", "reservation_id": reservation,
        "timeslot_start": start, "timeslot_end": start + Minutes::minutes(45),
    });
    let (status, created, _) = server.post("/api/v1/instances", &body).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reservations_are_placed_fullest_first_and_given_back_when_they_end() {
    let (simulator, server) = fleet_server().await;
    let big = register_worker(&server, &simulator, "big", 16).await;
    let small = register_worker(&server, &simulator, "small", 8).await;
    for worker in [&big, &small] {
        until(&server, &format!("/api/v1/workers/{worker}"), |w| {
            w["service_status"] == "available"
        })
        .await;
    }
    let definition = definition(&server, "ospf", 4).await;

    // Six reservations of 4 cores: the small worker fills first (fullest after placement),
    // then the big one; nothing goes beyond a worker's 16 or 8 cores.
    let mut ids = Vec::new();
    for n in 0..6 {
        ids.push(request(&server, &definition, &format!("r-{n}"), 10).await);
    }
    let mut placed = BTreeMap::new();
    for id in &ids {
        let instance = until(&server, &format!("/api/v1/instances/{id}"), |i| {
            i["state"] == "scheduled"
        })
        .await;
        let ports: BTreeSet<String> = instance["ports"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            ports,
            BTreeSet::from(["console".to_owned(), "ssh".to_owned()]),
            "{instance}"
        );
        placed.insert(id.clone(), instance["worker_id"].as_str().unwrap().to_owned());
    }
    let on = |worker: &str| placed.values().filter(|w| *w == worker).count();
    assert_eq!((on(&small), on(&big)), (2, 4), "{placed:?}");
    let (_, explained) = server.get(&format!("/api/v1/instances/{}/placement", ids[0])).await;
    assert_eq!(explained["worker_id"], small.as_str(), "{explained}");
    assert_eq!(explained["placement"]["candidates"], 2, "{explained}");

    let mut ports_in_use = BTreeSet::new();
    for worker in [&big, &small] {
        let document = until(&server, &format!("/api/v1/workers/{worker}"), |w| {
            w["allocations"].as_object().is_some_and(|a| a.len() == on(worker))
        })
        .await;
        let allocated = document["allocated_capacity"]["cpu_cores"].as_u64().unwrap();
        assert!(allocated <= document["declared_capacity"]["cpu_cores"].as_u64().unwrap());
        for allocation in document["allocations"].as_object().unwrap().values() {
            for port in allocation["ports"].as_object().unwrap().values() {
                assert!(
                    ports_in_use.insert((worker.clone(), port.as_u64().unwrap())),
                    "a port twice"
                );
            }
        }
    }

    // A seventh does not fit (8 + 16 cores are taken): pending, with why, and capacity asked for.
    let waiting = request(&server, &definition, "r-waiting", 10).await;
    let pending = until(&server, &format!("/api/v1/instances/{waiting}"), |i| {
        !i["placement_reason"].is_null()
    })
    .await;
    assert_eq!(pending["state"], "pending");
    assert!(
        pending["placement_reason"].as_str().unwrap().contains("2 capacity"),
        "{pending}"
    );
    let (status, explained) = server.get(&format!("/api/v1/instances/{waiting}/placement")).await;
    assert_eq!(status, 200);
    assert_eq!(explained["placement"]["rejected"]["capacity"], 2, "{explained}");

    // One ends: its capacity and ports go back, and the waiting one takes them.
    let (status, _, _) = server
        .post(
            &format!("/api/v1/instances/{}/transitions", ids[0]),
            &json!({"to": "terminated", "reason": "done"}),
        )
        .await;
    assert_eq!(status, 200);
    let scheduled = until(&server, &format!("/api/v1/instances/{waiting}"), |i| {
        i["state"] == "scheduled"
    })
    .await;
    assert_eq!(scheduled["worker_id"], small.as_str(), "it takes the freed place");
    until(&server, &format!("/api/v1/workers/{small}"), |w| {
        w["allocations"]
            .as_object()
            .is_some_and(|a| !a.contains_key(&ids[0]) && a.len() == 2)
    })
    .await;

    // One whose timeslot began 10 minutes ago and that nothing placed is expired.
    let late = request(&server, &definition, "r-late", -10).await;
    let expired = until(&server, &format!("/api/v1/instances/{late}"), |i| {
        i["state"] == "terminated"
    })
    .await;
    assert!(
        expired["state_reason"].as_str().unwrap().starts_with("expired"),
        "{expired}"
    );
    server.stop().await;
}

/// Two hundred reservations of 2 cores on ten simulated workers of 40 cores, fifty of them
/// ending on the way: fullest-first fills one worker before the next, so the 150 that remain
/// sit on 8 workers (7 full, one half) and 2 stay empty, no port twice; when they all end,
/// every worker is empty again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_reservations_pack_ten_workers_and_all_come_back() {
    let (simulator, server) = fleet_server().await;
    let mut workers = Vec::new();
    for n in 0..10 {
        workers.push(register_worker(&server, &simulator, &format!("w-{n:02}"), 40).await);
    }
    for worker in &workers {
        until(&server, &format!("/api/v1/workers/{worker}"), |w| {
            w["service_status"] == "available"
        })
        .await;
    }
    let definition = definition(&server, "bgp", 2).await;
    let mut ids = Vec::new();
    for n in 0..200 {
        ids.push(request(&server, &definition, &format!("r-{n:03}"), 10).await);
    }
    let scheduled = |id: &String| format!("/api/v1/instances/{id}");
    for id in &ids {
        until(&server, &scheduled(id), |i| i["state"] == "scheduled").await;
    }
    // Fifty end; the scheduler gives their places back.
    for id in ids.drain(150..) {
        let (status, _, _) = server
            .post(
                &format!("/api/v1/instances/{id}/transitions"),
                &json!({"to": "terminated", "reason": "left early"}),
            )
            .await;
        assert_eq!(status, 200);
    }
    let mut held = Vec::new();
    for worker in &workers {
        let document = until(&server, &format!("/api/v1/workers/{worker}"), |w| {
            let live = w["allocations"]
                .as_object()
                .map_or(0, |a| a.keys().filter(|k| ids.contains(k)).count());
            w["allocations"].as_object().is_some_and(|a| a.len() == live)
        })
        .await;
        let allocations = document["allocations"].as_object().unwrap();
        let cores = document["allocated_capacity"]["cpu_cores"].as_u64().unwrap();
        assert_eq!(cores, 2 * allocations.len() as u64, "{document}");
        assert!(cores <= 40);
        let ports: BTreeSet<u64> = allocations
            .values()
            .flat_map(|a| a["ports"].as_object().unwrap().values().map(|p| p.as_u64().unwrap()))
            .collect();
        assert_eq!(ports.len(), 2 * allocations.len(), "two ports each, none twice");
        held.push(allocations.len());
    }
    held.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(held.iter().sum::<usize>(), 150);
    assert_eq!(
        held.iter().filter(|n| **n == 0).count(),
        2,
        "fullest-first leaves 2 workers empty: {held:?}"
    );
    assert_eq!(held.iter().filter(|n| **n == 20).count(), 7, "{held:?}");
    for id in &ids {
        let (status, _, _) = server
            .post(
                &format!("/api/v1/instances/{id}/transitions"),
                &json!({"to": "terminated", "reason": "exam over"}),
            )
            .await;
        assert_eq!(status, 200);
    }
    for worker in &workers {
        let document = until(&server, &format!("/api/v1/workers/{worker}"), |w| {
            w["allocations"].as_object().is_some_and(|a| a.is_empty())
        })
        .await;
        assert_eq!(document["allocated_capacity"]["cpu_cores"], 0);
        assert_eq!(document["free_ports"], 8000);
    }
    server.stop().await;
}

/// Two schedulers passing at once over one store (what two replicas would do without their
/// lease): every reservation is placed once, no worker holds more than it declares, no port
/// is held twice, no allocation is left on a worker its instance is not scheduled on, and every
/// scheduled instance's worker holds its allocation.
async fn two_schedulers_at_once(settings: lablet_infrastructure::Settings) {
    let run = lablet_tests::bench::durable_placement::run(settings, 20, 150, 2).await;
    assert_eq!(run.placed, 150, "{run:?}");
    let faults = (
        run.over_allocated,
        run.ports_twice,
        run.stray_allocations,
        run.unallocated,
    );
    assert_eq!(faults, (0, 0, 0, 0), "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_at_once_on_sqlite_never_over_allocate() {
    let dir = tempfile::tempdir().unwrap();
    let settings = lablet_infrastructure::Settings::defaults_in(dir.path());
    lablet_migrations::migrate_all(&settings).await.unwrap();
    two_schedulers_at_once(settings).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_at_once_on_postgres_never_over_allocate() {
    let Some(database) = lablet_tests::postgres::TestDatabase::create("two_schedulers_at_once").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut settings = lablet_infrastructure::Settings::defaults_in(dir.path());
    let url = database.url().to_owned();
    settings.event_store = lablet_infrastructure::config::StoreLocation::Postgres(url.clone());
    settings.read_models = lablet_infrastructure::config::StoreLocation::Postgres(url);
    lablet_migrations::migrate_all(&settings).await.unwrap();
    two_schedulers_at_once(settings).await;
    database.drop_now().await;
}
