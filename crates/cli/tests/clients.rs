//! The clients people use, against the broker the tests run on: the Java console tools (from the
//! Kafka jars of `deploy/local/services`), confluent-kafka for Python, and kcat. Orders go in
//! through each, the matcher matches them, and the outputs come back out through each.
//!
//! Java comes with the services script; Python's client is named by `TRADESTREAM_TEST_PYTHON` (an
//! interpreter that imports `confluent_kafka`); kcat is Debian's. Under `CI=true` a missing client
//! fails its test.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

use common::*;

/// Runs the matcher over the `n` orders on `orders`, checks every output against the engine run
/// offline over them, and returns the number of `executions` records (the offline run's).
fn match_all(addr: &str, n: u64) -> usize {
    let matcher = start_matcher(addr, 1_000);
    wait_committed(addr, n, Duration::from_secs(120));
    let stats = stop_matcher(matcher);
    assert_eq!(stats["records_in"].as_u64(), Some(n), "{stats}");
    let verified = offline::verify_with(addr, offline::Check::default());
    assert_eq!(verified.dead, 0, "every order the client wrote decodes");
    verified.by_topic["executions"]
}

fn run_with_input(mut cmd: Command, input: &str) -> std::process::Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("client starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().expect("client exits")
}

fn kafka_tool(class: &str) -> Command {
    let mut c = Command::new("bash");
    c.arg(root().join("deploy/local/services"))
        .args(["kafka-tool", class]);
    c
}

#[test]
fn java_console_tools_produce_orders_and_read_outputs() {
    let suite = "the Java console-tools test";
    if tradestream_testkit::service_command("java", suite).is_none()
        || tradestream_testkit::service_command("mvn", suite).is_none()
    {
        return;
    }
    let _serial = serial();
    let (_broker, addr) = broker_with_topics();
    let lines: String = order_lines(200, 21)
        .iter()
        .map(|(k, v)| format!("{k}|{v}\n"))
        .collect();
    let mut producer = kafka_tool("org.apache.kafka.tools.ConsoleProducer");
    producer.args(["--bootstrap-server", &addr, "--topic", "orders"]);
    producer.args([
        "--property",
        "parse.key=true",
        "--property",
        "key.separator=|",
    ]);
    let out = run_with_input(producer, &lines);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let executions = match_all(&addr, 200);
    let mut consumer = kafka_tool("org.apache.kafka.tools.consumer.ConsoleConsumer");
    consumer.args(["--bootstrap-server", &addr, "--topic", "executions"]);
    // Every record of `executions`, each with its provenance headers.
    let max = executions.to_string();
    consumer.args([
        "--from-beginning",
        "--max-messages",
        max.as_str(),
        "--timeout-ms",
        "30000",
    ]);
    consumer.args(["--property", "print.headers=true"]);
    let out = run_with_input(consumer, "");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("Processed a total of {executions} messages")),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.matches("source-partition:").count(),
        executions,
        "{stdout}"
    );
}

#[test]
fn confluent_kafka_for_python_produces_orders_and_reads_outputs() {
    let Some(python) =
        tradestream_testkit::service("TRADESTREAM_TEST_PYTHON", "the Python client test")
    else {
        return;
    };
    let _serial = serial();
    let (_broker, addr) = broker_with_topics();
    let lines: String = order_lines(200, 22)
        .iter()
        .map(|(k, v)| format!("{k}\t{v}\n"))
        .collect();
    let produce = r#"
import sys
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": sys.argv[1], "enable.idempotence": True, "partitioner": "murmur2_random"})
failed = []
for line in sys.stdin:
    key, value = line.rstrip("\n").split("\t", 1)
    p.produce("orders", key=key, value=value, on_delivery=lambda e, m: e and failed.append(e))
left = p.flush(30)
assert not failed and left == 0, (failed, left)
"#;
    let mut cmd = Command::new(&python);
    cmd.args(["-c", produce, &addr]);
    let out = run_with_input(cmd, &lines);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let executions = match_all(&addr, 200);
    let consume = r#"
import sys
from confluent_kafka import Consumer, TopicPartition
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": "py-test", "enable.partition.eof": True})
md = c.list_topics("executions", timeout=30)
c.assign([TopicPartition("executions", p, 0) for p in md.topics["executions"].partitions])
open_partitions, n, seq_headers = set(md.topics["executions"].partitions), 0, 0
while open_partitions:
    m = c.poll(5)
    if m is None:
        break
    if m.error():
        open_partitions.discard(m.partition())
        continue
    n += 1
    seq_headers += any(k == "seq" for k, _ in (m.headers() or []))
print(n, seq_headers)
"#;
    let out = Command::new(&python)
        .args(["-c", consume, &addr])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let counts = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(
        counts,
        format!("{executions} {executions}"),
        "records, seq headers"
    );
}

#[test]
fn kcat_lists_produces_and_reads_on_apache_kafka() {
    // Debian's kcat (librdkafka 2.0.2) cannot read the embedded broker's ApiVersions answer;
    // docs/topics.md says so. This test is for Apache Kafka (under CI=true, the Kafka pass).
    if !kafka_only_in("kcat_lists_produces_and_reads_on_apache_kafka", "clients") {
        return;
    }
    if tradestream_testkit::service_command("kcat", "the kcat test").is_none() {
        return;
    }
    let _serial = serial();
    let (_broker, addr) = broker_with_topics();
    let out = Command::new("kcat")
        .args(["-L", "-b", &addr, "-t", "orders"])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && listing.contains("6 partitions"),
        "{listing}"
    );
    let lines: String = order_lines(100, 23)
        .iter()
        .map(|(k, v)| format!("{k}|{v}\n"))
        .collect();
    let mut produce = Command::new("kcat");
    produce.args([
        "-P",
        "-b",
        &addr,
        "-t",
        "orders",
        "-K",
        "|",
        "-X",
        "partitioner=murmur2_random",
    ]);
    let out = run_with_input(produce, &lines);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let executions = match_all(&addr, 100);
    let out = Command::new("kcat")
        .args([
            "-C",
            "-b",
            &addr,
            "-t",
            "executions",
            "-e",
            "-q",
            "-f",
            "%h\n",
        ])
        .output()
        .unwrap();
    let headers = String::from_utf8_lossy(&out.stdout);
    assert_eq!(headers.matches("seq=").count(), executions, "{headers}");
}
