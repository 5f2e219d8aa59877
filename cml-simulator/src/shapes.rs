//! The JSON bodies of CML 2.9's answers, shaped as its OpenAPI document describes them.

use crate::model::{cml_time, group_id, SimLab, SimState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// The hostname every simulated compute reports.
const HOSTNAME: &str = "cml-controller";
/// The id of the one simulated compute host.
const COMPUTE_ID: &str = "1b2f6b3c-6f0e-4d5a-9c61-3f1e2d4c5b6a";
/// Total memory and disk of the simulated host, in bytes.
const MEMORY_TOTAL: f64 = 128.0 * 1024.0 * 1024.0 * 1024.0;
const DISK_TOTAL: f64 = 512.0 * 1024.0 * 1024.0 * 1024.0;

/// CML's error body (`ErrorResponse`) with its status.
pub fn error(status: StatusCode, description: &str) -> Response {
    (
        status,
        Json(json!({"code": status.as_u16(), "description": description})),
    )
        .into_response()
}

pub fn lab(lab: &SimLab) -> Value {
    let groups: Vec<Value> = lab
        .groups
        .iter()
        .map(|name| json!({"id": group_id(name), "permission": "read_only", "name": name}))
        .collect();
    json!({
        "id": lab.id,
        "created": cml_time(lab.created),
        "modified": cml_time(lab.modified),
        "lab_description": lab.description,
        "lab_notes": lab.notes,
        "lab_title": lab.title,
        "owner": lab.owner_id,
        "owner_username": lab.owner_username,
        "owner_fullname": lab.owner_fullname,
        "state": lab.state,
        "node_count": lab.node_count,
        "link_count": lab.link_count,
        "groups": groups,
        "effective_permissions": ["lab_admin", "lab_edit", "lab_exec", "lab_view"],
    })
}

/// A lab's topology in CML's YAML export form (the lab block; nodes and links are not
/// simulated, only counted).
pub fn topology_yaml(lab: &SimLab) -> String {
    let quoted = |text: &str| serde_json::to_string(text).unwrap_or_default();
    format!(
        "lab:\n  title: {}\n  description: {}\n  notes: {}\n  version: 0.2.2\nnodes: []\nlinks: []\n",
        quoted(&lab.title),
        quoted(&lab.description),
        quoted(&lab.notes),
    )
}

pub fn system_information(state: &SimState) -> Value {
    json!({
        "version": state.config.version,
        "ready": true,
        "allow_ssh_pubkey_auth": false,
        "oui": "52:54:00:00:00:00",
    })
}

fn is_enterprise(state: &SimState) -> bool {
    !state.config.product_license.contains("Personal")
}

pub fn system_health(state: &SimState) -> Value {
    json!({
        "valid": true,
        "computes": {
            COMPUTE_ID: {
                "kvm_vmx_enabled": true, "enough_cpus": true, "lld_connected": true,
                "lld_synced": true, "libvirt": true, "fabric": true, "device_mux": true,
                "refplat_images_available": true, "docker_shim": true, "valid": true,
                "admission_state": "READY", "is_controller": true, "hostname": HOSTNAME,
            }
        },
        "is_licensed": true,
        "is_enterprise": is_enterprise(state),
        "controller": {"core_connected": true, "nodes_loaded": true, "images_loaded": true, "valid": true},
    })
}

fn usage(percent: f64, total: f64) -> Value {
    let used = (total * percent / 100.0).round();
    json!({"used": used, "free": total - used, "total": total})
}

pub fn system_stats(state: &SimState) -> Value {
    let figures = state.figures;
    let memory = usage(figures.memory_percent, MEMORY_TOTAL);
    let disk = usage(figures.disk_percent, DISK_TOTAL);
    let total_nodes: u32 = state.labs.iter().map(|lab| lab.node_count).sum();
    json!({
        "computes": {
            COMPUTE_ID: {
                "hostname": HOSTNAME,
                "is_controller": true,
                "stats": {
                    "cpu": {"count": 32, "percent": figures.cpu_percent, "model": "Simulated CPU",
                            "predicted": 32, "load": [figures.cpu_percent / 100.0]},
                    "memory": memory,
                    "disk": disk,
                    "dominfo": {"total_nodes": total_nodes, "total_orphans": 0,
                                "running_nodes": figures.running_nodes, "running_orphans": 0,
                                "allocated_cpus": figures.running_nodes, "allocated_memory": 0},
                },
            }
        },
        "all": {"cpu": {"count": 32, "percent": figures.cpu_percent}, "memory": memory, "disk": disk},
        "controller": {"disk": disk},
    })
}

pub fn licensing(state: &SimState) -> Value {
    let expires = cml_time(state.license_expires);
    let time_info = json!({"succeeded": null, "attempted": null, "scheduled": null,
                           "status": null, "failure": null, "success": null});
    json!({
        "udi": {"hostname": HOSTNAME, "product_uuid": COMPUTE_ID},
        "registration": {"status": "COMPLETED", "smart_account": "Simulated", "virtual_account": "Default",
                         "register_time": time_info, "renew_time": time_info, "expires": expires},
        "authorization": {"status": "IN_COMPLIANCE", "renew_time": time_info, "expires": expires},
        "reservation_mode": false,
        "features": [],
        "product_license": {"active": state.config.product_license, "is_enterprise": is_enterprise(state)},
        "transport": {"proxy": {"server": null, "port": null}, "ssms": null,
                      "default_ssms": "https://smartreceiver.cisco.com/licservice/license"},
    })
}
