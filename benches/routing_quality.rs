//! The in-process classifier ([`TextClassifier`]) on public intent benchmarks: accuracy,
//! out-of-scope recall, calibration (a reliability table and the expected calibration
//! error), µs per `classify` and the model's load time. Data and splits:
//! `bench/routing-data/README.md`.
//!
//! `cargo bench --bench routing_quality` runs Banking77 and HWU64;
//! `cargo bench --bench routing_quality -- --clinc150` runs the held-out CLINC150 check
//! instead (fetch it first with `bench/routing-data/fetch_clinc150.sh`; never tune on it).
//! `--set banking77` / `--set hwu64` runs one set; `--dev` measures on a split of the
//! training files only (for tuning); `--epochs`, `--l2`, `--chars MIN,MAX`, `--folds`,
//! `--abstain` … override the default [`TrainOptions`].

use std::collections::BTreeSet;
use std::hint::black_box;
use std::time::{Duration, Instant};

use polyrelay::routing::{TextClassifier, TrainOptions};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/routing-data");

/// One labelled message.
struct Example {
    text: String,
    label: String,
}

/// A benchmark: train and test examples; test examples whose label is not in training are
/// out of scope.
struct Set {
    name: &'static str,
    train: Vec<Example>,
    test: Vec<Example>,
    held_out_labels: usize,
}

fn read_csv(path: &str) -> Vec<Example> {
    let pairs = TextClassifier::read_csv(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    pairs
        .into_iter()
        .map(|(text, label)| Example { text, label })
        .collect()
}

/// A CSV set with one label in five (by sorted name, the 3rd, 8th, 13th…) held out of
/// training: its test messages are the out-of-scope ones. With `dev` (for tuning), the test
/// file is not read: every 5th training query is the test split instead.
fn csv_set(name: &'static str, dev: bool) -> Set {
    let mut train = read_csv(&format!("{DATA}/{name}/train.csv"));
    let test = if dev {
        let all = std::mem::take(&mut train);
        let mut test = Vec::new();
        for (i, e) in all.into_iter().enumerate() {
            if i % 5 == 4 {
                test.push(e)
            } else {
                train.push(e)
            }
        }
        test
    } else {
        read_csv(&format!("{DATA}/{name}/test.csv"))
    };
    let labels: BTreeSet<&str> = train.iter().map(|e| e.label.as_str()).collect();
    let held: BTreeSet<String> = labels
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 5 == 2)
        .map(|(_, l)| (*l).to_owned())
        .collect();
    Set {
        name,
        held_out_labels: held.len(),
        train: train
            .into_iter()
            .filter(|e| !held.contains(&e.label))
            .collect(),
        test,
    }
}

/// CLINC150 (data_full.json): the 150 intents' train split; the test split plus oos_test.
fn clinc150() -> Set {
    let path = format!("{DATA}/clinc150/data_full.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e} (run bench/routing-data/fetch_clinc150.sh)"));
    let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let split = |key: &str| -> Vec<Example> {
        v[key]
            .as_array()
            .expect(key)
            .iter()
            .map(|p| Example {
                text: p[0].as_str().expect("text").to_owned(),
                label: p[1].as_str().expect("label").to_owned(),
            })
            .collect()
    };
    let mut test = split("test");
    test.extend(split("oos_test"));
    Set {
        name: "clinc150",
        train: split("train"),
        test,
        held_out_labels: 0,
    }
}

/// Ten equal-width confidence bins: (count, sum of confidence, right).
fn reliability(points: &[(f32, bool)]) -> ([(usize, f64, usize); 10], f64) {
    let mut bins = [(0usize, 0f64, 0usize); 10];
    for &(c, ok) in points {
        let b = ((c * 10.0) as usize).min(9);
        bins[b].0 += 1;
        bins[b].1 += f64::from(c);
        bins[b].2 += usize::from(ok);
    }
    let n = points.len().max(1) as f64;
    let ece = bins
        .iter()
        .filter(|b| b.0 > 0)
        .map(|b| (b.0 as f64 / n) * (b.2 as f64 / b.0 as f64 - b.1 / b.0 as f64).abs())
        .sum();
    (bins, ece)
}

/// The Wilson score interval (95 %) of `right` successes in `n`.
fn wilson(right: usize, n: usize) -> (f64, f64) {
    let (n, p, z) = (n.max(1) as f64, right as f64 / n.max(1) as f64, 1.96f64);
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / (1.0 + z * z / n);
    (centre - half, centre + half)
}

/// Options from the command line: `--epochs N`, `--l2 X`, `--chars MIN,MAX`,
/// `--unsegmented MIN,MAX`, `--bigrams on|off`, `--folds K`, `--abstain X`, `--rate X`,
/// `--average-from N`; the defaults otherwise.
fn options(args: &[String]) -> TrainOptions {
    let mut o = TrainOptions::default();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let pair = |v: String| -> (usize, usize) {
        let mut it = v.split(',').map(|x| x.parse().expect("a number"));
        (it.next().expect("min"), it.next().expect("max"))
    };
    if let Some(v) = value("--epochs") {
        o = o.epochs(v.parse().expect("epochs"));
    }
    if let Some(v) = value("--average-from") {
        o = o.average_from(v.parse().expect("average-from"));
    }
    if let Some(v) = value("--l2") {
        o = o.l2(v.parse().expect("l2"));
    }
    if let Some(v) = value("--rate") {
        o = o.learning_rate(v.parse().expect("rate"));
    }
    if let Some(v) = value("--chars") {
        let (a, b) = pair(v);
        o = o.char_ngrams(a, b);
    }
    if let Some(v) = value("--unsegmented") {
        let (a, b) = pair(v);
        o = o.unsegmented_ngrams(a, b);
    }
    if let Some(v) = value("--bigrams") {
        o = o.word_bigrams(v == "on");
    }
    if let Some(v) = value("--folds") {
        o = o.calibration_folds(v.parse().expect("folds"));
    }
    if let Some(v) = value("--abstain") {
        o = o.abstain_below(v.parse().expect("abstain"));
    }
    o
}

fn run(set: &Set, options: &TrainOptions) {
    let known: BTreeSet<&str> = set.train.iter().map(|e| e.label.as_str()).collect();
    let started = Instant::now();
    let clf = TextClassifier::train_with(
        set.train
            .iter()
            .map(|e| (e.text.as_str(), e.label.as_str())),
        options,
    )
    .expect("trains");
    let train_time = started.elapsed();
    // Save and load: the load time is the best of five (the file in the page cache).
    let path =
        std::env::temp_dir().join(format!("polyrelay-{}-{}.clf", set.name, std::process::id()));
    clf.save(&path).expect("saves");
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let mut load_time = Duration::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let loaded = TextClassifier::load(&path).expect("loads");
        load_time = load_time.min(t.elapsed());
        black_box(loaded);
    }
    let _ = std::fs::remove_file(&path);

    let (mut top1, mut in_scope_right, mut in_scope, mut oos, mut oos_abstained) = (0, 0, 0, 0, 0);
    let mut points = Vec::new();
    let mut oos_confidence = Vec::new();
    for e in &set.test {
        let p = clf.predict(&e.text);
        let answered = clf.classify(&e.text).is_some();
        if known.contains(e.label.as_str()) {
            in_scope += 1;
            let ok = *p.label == *e.label;
            top1 += usize::from(ok);
            in_scope_right += usize::from(ok && answered);
            points.push((p.confidence, ok));
        } else {
            oos += 1;
            oos_abstained += usize::from(!answered);
            oos_confidence.push(p.confidence);
        }
    }
    // Speed: every test message, the fastest of five passes after a warm-up pass (the
    // machine is shared: the fastest pass is the least disturbed one).
    for e in &set.test {
        black_box(clf.classify(black_box(&e.text)));
    }
    let mut fastest = Duration::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for e in &set.test {
            black_box(clf.classify(black_box(&e.text)));
        }
        fastest = fastest.min(t.elapsed());
    }
    let per_message = fastest.as_secs_f64() * 1e6 / set.test.len() as f64;

    let pct = |a: usize, b: usize| 100.0 * a as f64 / b.max(1) as f64;
    println!(
        "## {}: {} training messages, {} labels ({} held out as unknown); test {} in scope, {} out of scope",
        set.name,
        set.train.len(),
        known.len(),
        set.held_out_labels,
        in_scope,
        oos
    );
    println!("train {:.2} s", train_time.as_secs_f64());
    println!(
        "in-scope accuracy {:.1} % (top-1 without abstaining {:.1} %), out-of-scope recall {:.1} %",
        pct(in_scope_right, in_scope),
        pct(top1, in_scope),
        pct(oos_abstained, oos)
    );
    println!(
        "classify {per_message:.2} µs a message (mean over the test set, fastest of 5 passes)"
    );
    println!(
        "model file {:.1} MB, load {:.1} ms (best of 5)",
        size as f64 / 1e6,
        load_time.as_secs_f64() * 1e3
    );
    let (bins, ece) = reliability(&points);
    println!(
        "| confidence | count | mean confidence | accuracy | 95 % interval of the accuracy | gap |"
    );
    println!("|---|---:|---:|---:|---|---:|");
    for (i, b) in bins.iter().enumerate() {
        if b.0 == 0 {
            continue;
        }
        let (mean, acc) = (b.1 / b.0 as f64, b.2 as f64 / b.0 as f64);
        let (lo, hi) = wilson(b.2, b.0);
        // Within ±5 points, or the stated confidence inside the sampling interval.
        let mark = if (acc - mean).abs() <= 0.05 {
            ""
        } else if (lo..=hi).contains(&mean) {
            " (sampling)"
        } else {
            " **out**"
        };
        println!(
            "| {:.1}–{:.1} | {} | {mean:.3} | {acc:.3} | {lo:.3}–{hi:.3} | {:+.1}{mark} |",
            i as f64 / 10.0,
            (i + 1) as f64 / 10.0,
            b.0,
            100.0 * (acc - mean)
        );
    }
    println!("expected calibration error {ece:.4}");
    trade_off(&points, &oos_confidence, clf.abstain_below());
    println!();
}

/// In-scope accuracy (an abstention counts wrong) and out-of-scope recall at `threshold`.
fn at(points: &[(f32, bool)], oos: &[f32], threshold: f32) -> (f64, f64) {
    let right = points.iter().filter(|p| p.1 && p.0 >= threshold).count();
    let abstained = oos.iter().filter(|&&c| c < threshold).count();
    (
        100.0 * right as f64 / points.len().max(1) as f64,
        100.0 * abstained as f64 / oos.len().max(1) as f64,
    )
}

/// The abstain threshold's trade-off between in-scope accuracy and out-of-scope recall.
fn trade_off(points: &[(f32, bool)], oos: &[f32], default: f32) {
    if oos.is_empty() {
        return;
    }
    println!("| abstain below | in-scope accuracy | out-of-scope recall |");
    println!("|---:|---:|---:|");
    let mut grid: Vec<f32> = (6..=19).map(|i| i as f32 * 0.05).collect();
    if !grid.iter().any(|&t| (t - default).abs() < 1e-6) {
        grid.push(default);
        grid.sort_by(f32::total_cmp);
    }
    for t in grid {
        let (acc, rec) = at(points, oos, t);
        let mark = if (t - default).abs() < 1e-6 {
            " (default)"
        } else {
            ""
        };
        println!("| {t:.2}{mark} | {acc:.1} % | {rec:.1} % |");
    }
    // The best out-of-scope recall at each in-scope accuracy floor (thresholds by 0.005).
    let floor = |target: f64| {
        (0..=200)
            .map(|i| at(points, oos, i as f32 * 0.005))
            .filter(|(acc, _)| *acc >= target)
            .map(|(_, rec)| rec)
            .fold(0.0f64, f64::max)
    };
    let top1 = at(points, oos, 0.0).0;
    println!(
        "OOS recall at in-scope accuracy ≥ top-1 − 1 / 2 / 3 / 5 points: {:.1} / {:.1} / {:.1} / {:.1} %",
        floor(top1 - 1.0),
        floor(top1 - 2.0),
        floor(top1 - 3.0),
        floor(top1 - 5.0)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let only = args
        .iter()
        .position(|a| a == "--set")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let options = options(&args);
    if args.iter().any(|a| a == "--clinc150") {
        run(&clinc150(), &options);
        return;
    }
    let dev = args.iter().any(|a| a == "--dev");
    for name in ["banking77", "hwu64"] {
        if only.as_deref().is_none_or(|o| o == name) {
            run(&csv_set(name, dev), &options);
        }
    }
}
