//! The worker templates file (`LABLET_WORKER_TEMPLATES`): YAML, a `templates` list whose entries
//! hold a `name` and the template's fields (see `docs/fleet.md` and
//! `examples/worker-templates.yaml`). Each entry is checked like an API body, so a bad file
//! stops the start with the entry and the field named.

use crate::config::ConfigError;
use lablet_domain::values::Name;
use lablet_domain::worker_template::TemplateSpec;
use std::path::Path;

const SETTING: &str = "LABLET_WORKER_TEMPLATES";

/// The file's shape before each entry is checked.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedFile {
    templates: Vec<yaml_serde::Mapping>,
}

fn refused(message: String) -> ConfigError {
    ConfigError {
        setting: SETTING,
        message,
    }
}

/// The templates in the file at `path`, by name, in file order.
pub fn read_template_seeds(path: &Path) -> Result<Vec<(Name<128>, TemplateSpec)>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| refused(format!("cannot read {}: {e}", path.display())))?;
    parse_template_seeds(&text).map_err(|message| refused(format!("{}: {message}", path.display())))
}

/// The templates in `text`, or what is wrong with it.
pub fn parse_template_seeds(text: &str) -> Result<Vec<(Name<128>, TemplateSpec)>, String> {
    let file: SeedFile = yaml_serde::from_str(text).map_err(|e| e.to_string())?;
    let mut seeds: Vec<(Name<128>, TemplateSpec)> = Vec::with_capacity(file.templates.len());
    for (index, mut entry) in file.templates.into_iter().enumerate() {
        let at = |field: &str, why: String| format!("templates[{index}].{field}: {why}");
        let name = entry.remove("name").ok_or_else(|| at("name", "is required".into()))?;
        let name: String = yaml_serde::from_value(name).map_err(|e| at("name", e.to_string()))?;
        let name = Name::parse(name).map_err(|why| at("name", why))?;
        if seeds.iter().any(|(seen, _)| *seen == name) {
            return Err(at("name", format!("{name} appears twice")));
        }
        let spec: TemplateSpec =
            yaml_serde::from_value(yaml_serde::Value::Mapping(entry)).map_err(|e| at("(fields)", e.to_string()))?;
        seeds.push((name, spec));
    }
    Ok(seeds)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "templates:\n  - name: metal-large\n    instance_type: m5zn.metal\n    image_pattern: cml-2.9-*\n    declared_capacity: {cpu_cores: 48, memory_gb: 192, storage_gb: 1000, max_nodes: 120}\n    license_type: enterprise\n    hourly_cost: 3.96\n";

    #[test]
    fn templates_are_read_and_a_bad_entry_is_named() {
        let seeds = parse_template_seeds(FILE).unwrap();
        assert_eq!(seeds.len(), 1);
        assert_eq!(seeds[0].0.as_str(), "metal-large");
        assert_eq!(seeds[0].1.declared_capacity.cpu_cores, 48);
        let unknown = FILE.replace("hourly_cost", "hourly_price");
        let err = parse_template_seeds(&unknown).unwrap_err();
        assert!(err.contains("templates[0]") && err.contains("hourly_price"), "{err}");
        let twice = format!("{FILE}{}", FILE.trim_start_matches("templates:\n"));
        assert!(parse_template_seeds(&twice).unwrap_err().contains("appears twice"));
        let nameless = FILE.replace("  - name: metal-large\n    instance_type", "  - instance_type");
        assert!(parse_template_seeds(&nameless)
            .unwrap_err()
            .contains("templates[0].name"));
    }

    #[test]
    fn the_example_file_in_the_repository_reads() {
        let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/worker-templates.yaml");
        let seeds = read_template_seeds(Path::new(example)).unwrap();
        assert!(seeds.len() >= 2, "the example shows more than one template");
    }
}
