//! deploy/ checked without Docker or Kubernetes (neither runs on this machine): every YAML and
//! JSON file parses; the compose file runs the five services with two replicas on one ledger and
//! one queue; the Kubernetes probes ask paths the API answers; the systemd unit passes
//! `systemd-analyze verify`; the Dockerfile's steps pass `deploy/check-image-steps.sh`; its
//! HEALTHCHECK command answers against a real `disclose serve`; and deploy/disclose.toml parses
//! with the project's own configuration parser. YAML is read by Debian's PyYAML (python3), to
//! keep a YAML crate out of the build. Fast, loopback only.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::service::Service;
use common::{BIN, Scratch, repo};
use disclose::channels::config::ChannelConfig;
use disclose::config::Config;
use serde_json::Value;

fn deploy(rel: &str) -> PathBuf {
    repo().join("deploy").join(rel)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every document of a YAML file, as JSON, parsed by PyYAML's safe loader (anchors and merge
/// keys resolved as compose and kubectl resolve them).
fn yaml(path: &Path) -> Vec<Value> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml\nprint(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1], encoding='utf-8')) if d is not None]))",
        ])
        .arg(path)
        .output()
        .expect("python3 with PyYAML");
    assert!(
        out.status.success(),
        "{} does not parse as YAML:\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn one_yaml(rel: &str) -> Value {
    let mut docs = yaml(&deploy(rel));
    assert_eq!(docs.len(), 1, "{rel}: one document");
    docs.remove(0)
}

/// deploy/disclose.toml through `Config::from_toml`, with no environment.
fn production_config() -> Config {
    Config::from_toml(
        &read(&deploy("disclose.toml")),
        "deploy/disclose.toml",
        |_| None,
    )
    .unwrap_or_else(|e| panic!("deploy/disclose.toml: {e}"))
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

/// Seconds from a compose duration such as "40s" or "1m".
fn compose_secs(d: &str) -> u64 {
    if let Some(n) = d.strip_suffix('s') {
        n.parse().unwrap()
    } else if let Some(n) = d.strip_suffix('m') {
        n.parse::<u64>().unwrap() * 60
    } else {
        panic!("duration {d:?}")
    }
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn every_yaml_and_json_file_under_deploy_parses() {
    let mut files = Vec::new();
    files_under(&repo().join("deploy"), &mut files);
    let (mut yamls, mut jsons) = (BTreeSet::new(), BTreeSet::new());
    for f in &files {
        let rel = f.strip_prefix(repo()).unwrap().display().to_string();
        match f.extension().and_then(|e| e.to_str()) {
            Some("yaml" | "yml") => {
                let docs = yaml(f);
                assert!(!docs.is_empty(), "{rel}: no document");
                if rel.starts_with("deploy/k8s/") {
                    for d in &docs {
                        for key in ["apiVersion", "kind"] {
                            assert!(d[key].is_string(), "{rel}: no {key}");
                        }
                        assert!(d["metadata"]["name"].is_string(), "{rel}: no metadata.name");
                    }
                }
                yamls.insert(rel);
            }
            Some("json") => {
                serde_json::from_str::<Value>(&read(f))
                    .unwrap_or_else(|e| panic!("{rel} does not parse as JSON: {e}"));
                jsons.insert(rel);
            }
            _ => {}
        }
    }
    // The files the README names are all there (and were parsed above).
    for rel in [
        "deploy/compose.yaml",
        "deploy/k8s/namespace.yaml",
        "deploy/k8s/configmap.yaml",
        "deploy/k8s/secret.example.yaml",
        "deploy/k8s/deployment.yaml",
        "deploy/k8s/service.yaml",
        "deploy/k8s/pdb.yaml",
    ] {
        assert!(yamls.contains(rel), "{rel} missing; found {yamls:?}");
    }
    assert!(
        jsons.contains("deploy/rabbitmq/definitions.json"),
        "{jsons:?}"
    );
}

#[test]
fn the_production_configuration_parses_with_the_projects_own_parser() {
    let c = production_config();
    assert!(c.ledger.url.starts_with("postgres://"), "{}", c.ledger.url);
    let amqp = c.queue.amqp_url.as_deref().expect("[queue] amqp_url");
    assert!(amqp.starts_with("amqp://"), "{amqp}");
    // No password in the file: the URLs with passwords come from the environment.
    for url in [c.ledger.url.as_str(), amqp] {
        let userinfo = url.split_once("://").unwrap().1.split('@').next().unwrap();
        assert!(
            !userinfo.contains(':'),
            "a password in deploy/disclose.toml: {url}"
        );
    }
    assert_eq!(c.serve.http_addr.as_deref(), Some("0.0.0.0:8080"));
    assert_eq!(c.serve.api_token_env, "DISCLOSE_API_TOKEN");

    // The queue's names and delivery limit are the broker definitions' (else RabbitMQ answers
    // 406 at start-up).
    let defs: Value = serde_json::from_str(&read(&deploy("rabbitmq/definitions.json"))).unwrap();
    let queue = defs["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == c.queue.jobs_queue.as_str())
        .expect("jobs queue in definitions.json");
    assert_eq!(
        queue["arguments"]["x-delivery-limit"],
        c.queue.delivery_limit
    );
    assert_eq!(
        queue["arguments"]["x-dead-letter-exchange"],
        c.queue.dead_letter_exchange.as_str()
    );
    let exchanges: BTreeSet<&str> = defs["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| s(&e["name"]))
        .collect();
    for x in [
        &c.queue.jobs_exchange,
        &c.queue.dead_letter_exchange,
        &c.queue.events_exchange,
    ] {
        assert!(
            exchanges.contains(x.as_str()),
            "{x} not in definitions.json"
        );
    }

    // The binary gets through loading the file: `config check` reports findings, not a parse
    // error. The connections and paths are pointed at this test's scratch so that nothing on
    // this machine is touched and nothing waits for a host that does not exist here.
    let scratch = Scratch::new("deploy-config-check");
    let out = Command::new(BIN)
        .current_dir(&scratch.0)
        .args(["--config", deploy("disclose.toml").to_str().unwrap()])
        .args(["config", "check", "--json"])
        .env("DISCLOSE_LEDGER_URL", scratch.path("ledger.db"))
        .env("DISCLOSE_QUEUE_AMQP_URL", "amqp://disclose@127.0.0.1:1/%2f")
        .env("DISCLOSE_PATHS_OUTPUT_DIR", scratch.path("var"))
        .env("DISCLOSE_QUEUE_SPOOL_DIR", scratch.path("spool"))
        .env_remove("DISCLOSE_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let findings: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}\n{stderr}")))
        .collect();
    let areas: BTreeSet<&str> = findings.iter().map(|f| s(&f["area"])).collect();
    assert!(
        areas.contains("ledger") && areas.contains("templates"),
        "config check did not get past parsing:\n{stdout}\n{stderr}"
    );
    for text in [&*stdout, &*stderr] {
        assert!(!text.contains("unknown field"), "{text}");
    }
    let ledger = findings.iter().find(|f| f["area"] == "ledger").unwrap();
    assert_eq!(ledger["ok"], true, "{ledger}");
}

#[test]
fn the_deployed_channel_files_parse_and_validate() {
    let configmap = one_yaml("k8s/configmap.yaml");
    let mut files: Vec<(String, String)> = std::fs::read_dir(deploy("channels"))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.strip_prefix(repo()).unwrap().display().to_string(),
                read(&p),
            )
        })
        .collect();
    for (key, text) in configmap["data"].as_object().unwrap() {
        if key.ends_with(".toml") && key != "disclose.toml" {
            files.push((format!("deploy/k8s/configmap.yaml {key}"), s(text).into()));
        }
    }
    assert!(files.len() >= 4, "{files:?}");
    let mut transports = BTreeSet::new();
    for (name, text) in &files {
        let cfg: ChannelConfig = toml::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let problems = cfg.validate();
        assert!(problems.is_empty(), "{name}: {problems:?}");
        transports.insert(format!("{}:{}", cfg.channel, cfg.transport.name()));
    }
    // What the deployments send for real instead of the image's dry-run outbox.
    for t in ["email:smtp", "letter:pdf_letters"] {
        assert!(transports.contains(t), "{t} not among {transports:?}");
    }
    // The ConfigMap's disclose.toml is deploy/disclose.toml, byte for byte: one file to edit.
    assert_eq!(
        s(&configmap["data"]["disclose.toml"]),
        read(&deploy("disclose.toml")),
        "deploy/k8s/configmap.yaml's disclose.toml differs from deploy/disclose.toml"
    );
}

#[test]
fn compose_runs_five_services_with_two_replicas_on_one_ledger_and_one_queue() {
    let compose = one_yaml("compose.yaml");
    let services = compose["services"].as_object().unwrap();
    let names: BTreeSet<&str> = services.keys().map(|k| k.as_str()).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "disclose-1",
            "disclose-2",
            "mailpit",
            "postgres",
            "rabbitmq"
        ])
    );
    for (name, svc) in services {
        assert!(
            svc["healthcheck"]["test"].is_array(),
            "{name}: no healthcheck"
        );
    }
    let grace = production_config().serve.grace_secs;
    let (one, two) = (&services["disclose-1"], &services["disclose-2"]);
    let env = |svc: &Value, key: &str| s(&svc["environment"][key]).to_string();
    let ledger = env(one, "DISCLOSE_LEDGER_URL");
    assert_eq!(
        ledger,
        env(two, "DISCLOSE_LEDGER_URL"),
        "one ledger for both"
    );
    assert!(
        ledger.starts_with("postgres://") && ledger.contains("@postgres:5432/"),
        "{ledger}"
    );
    let queue = env(one, "DISCLOSE_QUEUE_AMQP_URL");
    assert_eq!(
        queue,
        env(two, "DISCLOSE_QUEUE_AMQP_URL"),
        "one queue for both"
    );
    assert!(queue.contains("@rabbitmq:5672/"), "{queue}");
    // Passwords only from the env file, through compose's interpolation.
    for url in [&ledger, &queue] {
        assert!(url.contains(":${") && url.contains(":?"), "{url}");
    }
    let postgres = &services["postgres"]["environment"];
    assert_eq!(
        postgres["POSTGRES_PASSWORD"],
        "${POSTGRES_PASSWORD:?set in secrets.env}"
    );
    assert!(ledger.contains("${POSTGRES_PASSWORD:?"), "{ledger}");
    for svc in [one, two] {
        assert_eq!(svc["env_file"], serde_json::json!(["secrets.env"]));
        assert_eq!(svc["image"], one["image"]);
        assert_eq!(svc["volumes"], one["volumes"], "the same mounts and state");
        assert_eq!(svc["read_only"], true);
        assert!(compose_secs(s(&svc["stop_grace_period"])) > grace);
        for dep in ["postgres", "rabbitmq", "mailpit"] {
            assert_eq!(svc["depends_on"][dep]["condition"], "service_healthy");
        }
        // Every host path it mounts exists (relative to deploy/).
        for v in svc["volumes"].as_array().unwrap() {
            let host = s(v).split(':').next().unwrap();
            if host.starts_with('.') {
                assert!(deploy(host).exists(), "{host} (mounted by compose) missing");
            }
        }
    }
    assert_eq!(
        s(&one["build"]["dockerfile"]),
        "deploy/Dockerfile",
        "built from the repository root"
    );
    let secrets_example = read(&deploy("secrets.env.example"));
    for var in [
        "POSTGRES_PASSWORD",
        "RABBITMQ_PASSWORD",
        "DISCLOSE_API_TOKEN",
    ] {
        assert!(
            secrets_example.contains(&format!("{var}=change-me")),
            "{var} in secrets.env.example"
        );
    }

    // The broker imports the topology and a user at boot; both files declare the vhost,
    // since a node that imports definitions creates none.
    let rabbit = &services["rabbitmq"];
    assert!(
        rabbit["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| s(v).starts_with("./rabbitmq/definitions.json:/etc/rabbitmq/definitions.d/"))
    );
    let conf = s(&compose["configs"]["rabbitmq-conf"]["content"]);
    assert!(
        conf.contains("definitions.local.path = /etc/rabbitmq/definitions.d"),
        "{conf}"
    );
    let users = s(&compose["configs"]["rabbitmq-users"]["content"])
        .replace("${RABBITMQ_PASSWORD:?set in secrets.env}", "x");
    let users: Value = serde_json::from_str(&users).expect("the user definitions are JSON");
    let topology: Value =
        serde_json::from_str(&read(&deploy("rabbitmq/definitions.json"))).unwrap();
    for defs in [&users, &topology] {
        assert_eq!(defs["vhosts"], serde_json::json!([{"name": "/"}]));
    }
    assert_eq!(users["users"][0]["name"], "disclose");
    assert!(queue.starts_with("amqp://disclose:"), "{queue}");
}

/// The `.route("PATH"` entries of src/api/mod.rs.
fn api_routes() -> BTreeSet<String> {
    read(&repo().join("src/api/mod.rs"))
        .split(".route(\"")
        .skip(1)
        .map(|r| r.split('"').next().unwrap().to_string())
        .collect()
}

#[test]
fn the_kubernetes_deployment_probes_routes_the_api_serves() {
    let deployment = one_yaml("k8s/deployment.yaml");
    assert_eq!(deployment["kind"], "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"]["spec"];
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    assert_eq!(&deployment["spec"]["selector"]["matchLabels"], labels);
    let c = &pod["containers"][0];
    let routes = api_routes();
    for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
        assert_eq!(c[probe]["httpGet"]["path"], path, "{probe}");
        assert_eq!(c[probe]["httpGet"]["port"], "http", "{probe}");
        assert!(routes.contains(path), "{path} not among {routes:?}");
    }
    let config = production_config();
    let port: u64 = config
        .serve
        .http_addr
        .as_deref()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(c["ports"][0]["name"], "http");
    assert_eq!(c["ports"][0]["containerPort"], port);

    // Non-root with a read-only root; the state directory is an emptyDir.
    let dockerfile = read(&deploy("Dockerfile"));
    let uid: u64 = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("USER in the Dockerfile")
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], uid);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(
        c["securityContext"]["capabilities"]["drop"],
        serde_json::json!(["ALL"])
    );
    for r in ["requests", "limits"] {
        assert!(c["resources"][r]["memory"].is_string(), "resources.{r}");
    }
    assert!(pod["terminationGracePeriodSeconds"].as_u64().unwrap() > config.serve.grace_secs);
    let volumes = pod["volumes"].as_array().unwrap();
    let volume = |name: &str| {
        volumes
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("volume {name}"))
    };
    let mounts = c["volumeMounts"].as_array().unwrap();
    let output_dir = config.paths.output_dir.to_str().unwrap();
    let var = mounts
        .iter()
        .find(|m| m["mountPath"] == output_dir)
        .expect("a mount at [paths] output_dir");
    assert!(volume(s(&var["name"]))["emptyDir"].is_object());

    // Every ConfigMap key mounted exists, and lands where deploy/disclose.toml looks.
    let configmap = one_yaml("k8s/configmap.yaml");
    assert_eq!(
        volume("config")["configMap"]["name"],
        configmap["metadata"]["name"]
    );
    let channels_dir = config.paths.channels_dir.to_str().unwrap();
    for m in mounts.iter().filter(|m| m["name"] == "config") {
        let key = s(&m["subPath"]);
        assert!(
            configmap["data"][key].is_string(),
            "{key} not in the ConfigMap"
        );
        let at = s(&m["mountPath"]);
        assert!(
            at == "/etc/disclose/disclose.toml" || at == format!("{channels_dir}/{key}"),
            "{key} mounted at {at}"
        );
    }
    let keys_dir = config.approval.keys_dir.to_str().unwrap();
    assert!(mounts.iter().any(|m| m["mountPath"] == keys_dir));

    // Secrets by reference only; the example holds placeholders.
    let secret = one_yaml("k8s/secret.example.yaml");
    assert_eq!(
        c["envFrom"][0]["secretRef"]["name"],
        secret["metadata"]["name"]
    );
    let data = secret["stringData"].as_object().unwrap();
    assert!(data.contains_key(&config.serve.api_token_env));
    for (k, v) in data {
        assert!(
            s(v).contains("CHANGE-ME"),
            "{k}: a real value in the example"
        );
    }

    // The Service and the budget select these pods.
    let service = one_yaml("k8s/service.yaml");
    assert_eq!(&service["spec"]["selector"], labels);
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "http");
    let pdb = one_yaml("k8s/pdb.yaml");
    assert_eq!(pdb["kind"], "PodDisruptionBudget");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert_eq!(&pdb["spec"]["selector"]["matchLabels"], labels);
    for doc in [&deployment, &configmap, &secret, &service, &pdb] {
        assert_eq!(doc["metadata"]["namespace"], "disclose");
    }
}

/// The unit with its ExecStart pointed at the binary the tests built (verify wants the binary
/// to exist), in a directory of its own.
fn unit_copy(scratch: &Scratch, edit: impl Fn(&str) -> String) -> PathBuf {
    let unit = read(&deploy("systemd/disclose.service"));
    let original = "ExecStart=/usr/local/bin/disclose ";
    assert_eq!(unit.matches(original).count(), 1, "one ExecStart");
    let path = scratch.path("disclose.service");
    std::fs::write(
        &path,
        edit(&unit.replace(original, &format!("ExecStart={BIN} "))),
    )
    .unwrap();
    path
}

#[test]
fn the_systemd_unit_is_hardened_and_passes_systemd_analyze_verify() {
    let unit = read(&deploy("systemd/disclose.service"));
    let value = |key: &str| {
        unit.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key}= missing"))
            .to_string()
    };
    let config = production_config();
    let stop: u64 = value("TimeoutStopSec").parse().unwrap();
    assert!(
        stop > config.serve.grace_secs && stop <= config.serve.grace_secs + 15,
        "TimeoutStopSec {stop} against grace_secs {}",
        config.serve.grace_secs
    );
    for (key, want) in [
        ("KillSignal", "SIGTERM"),
        ("Restart", "on-failure"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("CapabilityBoundingSet", ""),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallFilter", "@system-service"),
        ("DynamicUser", "yes"),
        ("ReadWritePaths", config.paths.output_dir.to_str().unwrap()),
    ] {
        assert_eq!(value(key), want, "{key}");
    }
    assert!(value("RestrictAddressFamilies").contains("AF_INET"));
    assert!(value("EnvironmentFile").starts_with("/etc/disclose/"));
    assert!(value("ExecStart").contains("--config /etc/disclose/disclose.toml serve"));

    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("note: systemd-analyze is not installed: the unit was not verified");
        return;
    }
    let scratch = Scratch::new("deploy-systemd");
    let verify = |path: &Path| {
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(path)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // verify exits 0 on unknown keys and bad values (it only warns): no output at all is the bar.
    let (ok, stderr) = verify(&unit_copy(&scratch, |u| u.to_string()));
    assert!(
        ok && stderr.trim().is_empty(),
        "systemd-analyze verify:\n{stderr}"
    );
    // The same bar catches a misspelt directive, so the check above can fail.
    let (_, stderr) = verify(&unit_copy(&scratch, |u| {
        u.replace("ProtectSystem=strict", "ProtectSytem=strict")
    }));
    assert!(stderr.contains("Unknown key"), "{stderr}");

    // systemd's own exposure score (0 best, 10 worst); "OK" ends at 4.9.
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager", "--threshold=20"])
        .arg(unit_copy(&scratch, |u| u.to_string()))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exposure above 2.0:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_image_steps_pass_check_image_steps_sh() {
    let out = Command::new("bash")
        .arg(deploy("check-image-steps.sh"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("all checks passed"),
        "deploy/check-image-steps.sh:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains("FAIL"), "{stdout}");
}

/// The status line of `GET path` over HTTP/1.0, without a token.
fn status_line(port: u16, path: &str) -> String {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(conn, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer);
    answer.lines().next().unwrap_or_default().to_string()
}

/// The argv of a health check given as a JSON array after `CMD` (Dockerfile) or as `test:`
/// (compose), with the container's port replaced by the test's.
fn run_check(argv: &[String], port: u16) -> bool {
    let argv: Vec<String> = argv
        .iter()
        .map(|a| a.replace("127.0.0.1/8080", &format!("127.0.0.1/{port}")))
        .collect();
    assert!(
        argv.iter().any(|a| a.contains(&port.to_string())),
        "{argv:?}"
    );
    Command::new(&argv[0])
        .args(&argv[1..])
        .status()
        .unwrap()
        .success()
}

#[test]
fn the_image_and_compose_health_checks_answer_against_a_real_service() {
    // The Dockerfile's HEALTHCHECK, continuation lines joined: the JSON array after CMD.
    let dockerfile = read(&deploy("Dockerfile")).replace("\\\n", " ");
    let line = dockerfile
        .lines()
        .find(|l| l.starts_with("HEALTHCHECK"))
        .expect("HEALTHCHECK");
    let image_check: Vec<String> =
        serde_json::from_str(line.split_once(" CMD ").expect("CMD").1.trim()).unwrap();
    let compose = one_yaml("compose.yaml");
    let compose_check: Vec<String> =
        serde_json::from_value(compose["services"]["disclose-1"]["healthcheck"]["test"].clone())
            .unwrap();
    assert_eq!(compose_check[0], "CMD");
    let compose_check = compose_check[1..].to_vec();

    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let scratch = Scratch::new("deploy-health");
    let mut cmd = scratch.command(&["serve"]);
    cmd.env("DISCLOSE_QUEUE_SPOOL_DIR", scratch.path("spool"))
        .env("DISCLOSE_SERVE_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env_remove("DISCLOSE_QUEUE_AMQP_URL")
        .env_remove("DISCLOSE_API_TOKEN");
    let mut svc = Service::spawn(cmd, scratch.path("serve.log"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "no HTTP on {port}:\n{}",
            svc.tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The probes' paths answer 200 without a token (no token is even configured).
    let deployment = one_yaml("k8s/deployment.yaml");
    let c = &deployment["spec"]["template"]["spec"]["containers"][0];
    for probe in ["readinessProbe", "livenessProbe"] {
        let path = s(&c[probe]["httpGet"]["path"]);
        let status = status_line(port, path);
        assert!(status.contains(" 200 "), "{probe} {path}: {status}");
    }
    assert!(
        run_check(&image_check, port),
        "the image's HEALTHCHECK failed"
    );
    assert!(
        run_check(&compose_check, port),
        "compose's health check failed"
    );

    // Stopped, the same commands fail: they test something.
    assert!(svc.terminate(40).success(), "{}", svc.tail());
    assert!(
        !run_check(&image_check, port),
        "HEALTHCHECK passes with no service"
    );
    assert!(!run_check(&compose_check, port));
}
