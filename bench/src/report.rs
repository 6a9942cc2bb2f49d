//! Figures with min / median / max over repeated runs, each beside its
//! baseline from the same run, the machine they ran on, printed as a table
//! and written as JSON (which `--from-json` reads back).

use serde::{Deserialize, Serialize};

use crate::data::Scale;

/// The machine, as the kernel describes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
}

impl Machine {
    pub fn read() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo.lines().find_map(|l| l.strip_prefix("model name")).map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        Machine {
            cpu: cpu.unwrap_or_else(|| "unknown".into()),
            cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            memory_gib: (kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned(),
        }
    }
}

/// Min, median and max of repeated measurements.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Spread {
    #[serde(deserialize_with = "nan_if_null")]
    pub min: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub median: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub max: f64,
}

/// JSON has no NaN (the spread of no values): serde_json writes null, read back as NaN.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

impl Spread {
    pub fn of(values: &[f64]) -> Spread {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let median = if v.is_empty() {
            f64::NAN
        } else if v.len() % 2 == 1 {
            v[v.len() / 2]
        } else {
            (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
        };
        Spread { min: v.first().copied().unwrap_or(f64::NAN), median, max: v.last().copied().unwrap_or(f64::NAN) }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Figure {
    pub bench: String,
    pub name: String,
    pub unit: String,
    pub kith: Spread,
    /// What the figure is compared with, measured in the same run.
    pub baseline: Option<Baseline>,
    /// Kith's median over the baseline's.
    pub ratio: Option<f64>,
    pub goal: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Baseline {
    pub name: String,
    pub value: Spread,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Report {
    /// The generated shop: customers, orders, behaviours, events.
    pub data: [usize; 4],
    pub date: String,
    pub commit: String,
    pub scale: Scale,
    pub runs: usize,
    pub machine: Machine,
    pub figures: Vec<Figure>,
    /// Measured on PostgreSQL (beside SQLite or not): written into BENCHMARKS.md's PostgreSQL section.
    #[serde(default)]
    pub postgres: bool,
}

impl Report {
    pub fn new(scale: Scale, runs: usize) -> Report {
        let commit = std::process::Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        // Say so when the code measured is not the commit (BENCHMARKS.md, which runs write, aside).
        let changed = std::process::Command::new("git")
            .args(["status", "--porcelain", "--untracked-files=no", "--", ".", ":!BENCHMARKS.md"])
            .output()
            .is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
        let commit = if changed { format!("{commit} with uncommitted changes") } else { commit };
        Report {
            data: [0; 4],
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            commit,
            scale,
            runs,
            machine: Machine::read(),
            figures: Vec::new(),
            postgres: false,
        }
    }

    /// Add a figure; with a baseline, the ratio is Kith's median over the baseline's.
    pub fn add(&mut self, bench: &str, name: &str, unit: &str, kith: &[f64], baseline: Option<(&str, &[f64])>, goal: Option<&str>) {
        let kith = Spread::of(kith);
        let baseline = baseline.map(|(name, values)| Baseline { name: name.to_owned(), value: Spread::of(values) });
        let ratio = baseline.as_ref().map(|b| kith.median / b.value.median).filter(|r| r.is_finite());
        self.figures.push(Figure {
            bench: bench.to_owned(),
            name: name.to_owned(),
            unit: unit.to_owned(),
            kith,
            baseline,
            ratio,
            goal: goal.map(str::to_owned),
        });
    }

    /// The report as Markdown: a heading line with the machine, then the table.
    pub fn markdown(&self) -> String {
        let m = &self.machine;
        let mut out = format!(
            "Measured {} at commit `{}`, scale `{:?}` ({} customers, {} orders, {} behaviours: {} events), {} run(s) per figure, \
             on {} ({} cores, {} GiB, Linux {}).\n\n",
            self.date,
            self.commit,
            self.scale,
            self.data[0],
            self.data[1],
            self.data[2],
            self.data[3],
            self.runs,
            m.cpu,
            m.cores,
            m.memory_gib,
            m.kernel
        );
        out.push_str("| bench | figure | unit | min | median | max | baseline | baseline median | ratio | goal |\n");
        out.push_str("|---|---|---|---:|---:|---:|---|---:|---:|---|\n");
        for f in &self.figures {
            let (bname, bmedian) =
                f.baseline.as_ref().map_or(("—".to_owned(), "—".to_owned()), |b| (b.name.clone(), fmt(b.value.median)));
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                f.bench,
                f.name,
                f.unit,
                fmt(f.kith.min),
                fmt(f.kith.median),
                fmt(f.kith.max),
                bname,
                bmedian,
                f.ratio.map_or("—".to_owned(), |r| format!("{r:.2}")),
                f.goal.as_deref().unwrap_or("")
            ));
        }
        out
    }

    pub fn print(&self) {
        println!("\n{}", self.markdown());
    }

    /// Write this run's results into `path` (BENCHMARKS.md) between the markers of its
    /// scale's section (`large` has its own, the smaller scales share one), after `kept`:
    /// results already there that this run does not replace (see [`Report::section`]).
    /// Of each benchmark, only its latest results stay: rows of `kept` for a benchmark this
    /// run measured, or that an entry added after them measured again, are left out.
    pub fn write_into(&self, path: &std::path::Path, kept: &str) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(path)?;
        let (start, end) = section_bounds(&text, path, self.scale, self.postgres)?;
        let kept = latest_only(kept, self.figures.iter().map(|f| f.bench.clone()).collect());
        let kept = if kept.trim().is_empty() { String::new() } else { format!("{}\n\n", kept.trim()) };
        let updated = format!("{}\n\n{kept}{}\n{}", &text[..start], self.markdown(), &text[end..]);
        std::fs::write(path, updated)?;
        Ok(())
    }

    /// What `path` holds between the markers of `scale`'s section (or PostgreSQL's) now.
    pub fn section(path: &std::path::Path, scale: Scale, postgres: bool) -> anyhow::Result<String> {
        let text = std::fs::read_to_string(path)?;
        let (start, end) = section_bounds(&text, path, scale, postgres)?;
        Ok(text[start..end].to_owned())
    }
}

/// The entries of a results section (each a `Measured …` line and its table), less the
/// rows of benchmarks in `newer` or in an entry below theirs; an entry left without rows goes.
fn latest_only(section: &str, mut newer: std::collections::BTreeSet<String>) -> String {
    let mut entries: Vec<Vec<&str>> = Vec::new();
    for line in section.lines() {
        if line.starts_with("Measured ") {
            entries.push(vec![line]);
        } else if let Some(entry) = entries.last_mut()
            && line.starts_with('|')
        {
            entry.push(line);
        }
    }
    let mut out = Vec::new();
    for entry in entries.iter().rev() {
        let (heading, table) = entry.split_first().expect("an entry starts with its heading");
        let is_row = |line: &&&str| !line.starts_with("| bench |") && !line.starts_with("|---");
        let bench = |line: &str| line.trim_start_matches('|').split('|').next().unwrap_or_default().trim().to_owned();
        let rows: Vec<&str> = table.iter().filter(is_row).filter(|line| !newer.contains(&bench(line))).copied().collect();
        newer.extend(table.iter().filter(is_row).map(|line| bench(line)));
        if !rows.is_empty() {
            let header: Vec<&str> = table.iter().filter(|line| !is_row(line)).copied().collect();
            out.push(format!("{heading}\n\n{}\n{}", header.join("\n"), rows.join("\n")));
        }
    }
    out.reverse();
    out.join("\n\n")
}

fn markers(scale: Scale, postgres: bool) -> (&'static str, &'static str) {
    if postgres {
        return ("<!-- postgres results: written by kith-bench --markdown, never by hand -->", "<!-- end of postgres results -->");
    }
    match scale {
        Scale::Large => ("<!-- large results: written by kith-bench --markdown, never by hand -->", "<!-- end of large results -->"),
        _ => ("<!-- results: written by kith-bench --markdown, never by hand -->", "<!-- end of results -->"),
    }
}

/// Where the results of `scale`'s section start (after its opening marker) and end (at its closing one).
fn section_bounds(text: &str, path: &std::path::Path, scale: Scale, postgres: bool) -> anyhow::Result<(usize, usize)> {
    let (start, end) = markers(scale, postgres);
    match (text.find(start), text.find(end)) {
        (Some(a), Some(b)) => Ok((a + start.len(), b)),
        _ => anyhow::bail!("{} has no markers {start} … {end}", path.display()),
    }
}

/// The nearest-rank percentile `p` (0 to 1) of sorted values; NaN when there are none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn fmt(v: f64) -> String {
    if !v.is_finite() {
        "—".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_and_ratios() {
        let s = Spread::of(&[3.0, 1.0, 2.0]);
        assert_eq!((s.min, s.median, s.max), (1.0, 2.0, 3.0));
        assert_eq!(Spread::of(&[1.0, 4.0]).median, 2.5);
        let mut r = Report::new(Scale::Tiny, 1);
        r.add("ingest", "events/s", "1/s", &[100.0], Some(("rusqlite", &[400.0])), Some("≥ 1/3 of baseline"));
        assert_eq!(r.figures[0].ratio, Some(0.25));
    }

    #[test]
    fn results_replace_the_section_or_are_added_to_it() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let (start, end) = markers(Scale::Tiny, false);
        let mut old = Report::new(Scale::Tiny, 1);
        old.add("ingest", "old results", "1/s", &[100.0], None, None);
        std::fs::write(file.path(), format!("intro\n{start}\n\n{}\n{end}\nafter\n", old.markdown())).unwrap();
        let mut r = Report::new(Scale::Tiny, 1);
        r.add("journeys", "lateness p99", "s", &[0.5], None, None);
        let kept = Report::section(file.path(), Scale::Tiny, false).unwrap();
        r.write_into(file.path(), &kept).unwrap();
        r.write_into(file.path(), &kept).unwrap(); // saved again after a later benchmark
        let text = std::fs::read_to_string(file.path()).unwrap();
        assert!(text.starts_with("intro\n") && text.ends_with(&format!("{end}\nafter\n")), "{text}");
        assert_eq!((text.matches("old results").count(), text.matches("lateness p99").count()), (1, 1), "{text}");
        assert!(text.find("old results") < text.find("lateness p99"));

        r.write_into(file.path(), "").unwrap();
        let text = std::fs::read_to_string(file.path()).unwrap();
        assert!(!text.contains("old results") && text.contains("lateness p99"), "{text}");
    }

    #[test]
    fn added_results_replace_earlier_ones_of_the_same_benchmark() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let (start, end) = markers(Scale::Large, false);
        std::fs::write(file.path(), format!("{start}\n{end}\n")).unwrap();
        let entry = |commit: &str, figures: &[(&str, f64)]| {
            let mut r = Report::new(Scale::Large, 1);
            r.commit = commit.into();
            for (bench, value) in figures {
                r.add(bench, "figure", "s", &[*value], None, None);
            }
            r
        };
        let add = |r: &Report| r.write_into(file.path(), &Report::section(file.path(), Scale::Large, false).unwrap()).unwrap();
        add(&entry("c1", &[("ingest", 1.0), ("footprint", 2.0), ("segments", 3.0)]));
        add(&entry("c2", &[("journeys", 4.0)]));
        add(&entry("c3", &[("segments", 5.0), ("api", 6.0)]));
        let text = std::fs::read_to_string(file.path()).unwrap();
        // c1 keeps its ingest and footprint; its segments are c3's now.
        assert_eq!(text.matches("| segments |").count(), 1, "{text}");
        assert!(text.contains("| segments | figure | s | 5.00 |"), "{text}");
        assert!(text.contains("| ingest | figure | s | 1.00 |") && text.contains("| footprint |"), "{text}");
        assert!(text.find("`c1`") < text.find("`c2`") && text.find("`c2`") < text.find("`c3`"), "{text}");
        add(&entry("c4", &[("journeys", 7.0)]));
        let text = std::fs::read_to_string(file.path()).unwrap();
        assert!(!text.contains("`c2`") && text.contains("| journeys | figure | s | 7.00 |"), "an entry without rows goes: {text}");
        assert_eq!(text.matches("| bench |").count(), 3, "{text}");
    }

    #[test]
    fn a_report_saved_as_json_renders_as_it_did() {
        let mut r = Report::new(Scale::Large, 1);
        r.data = [1_000_000, 10_000_000, 30_000_000, 41_000_000];
        r.add("ingest", "events/s", "events/s", &[19_681.3], Some(("rusqlite", &[277_869.0])), Some("≥ 1/3 of rusqlite"));
        r.add("footprint", "peak RSS", "MB", &[236.0], None, None);
        r.add("journeys", "lateness p99", "s", &[], None, None);
        let saved: Report = serde_json::from_slice(&serde_json::to_vec_pretty(&r).unwrap()).unwrap();
        assert_eq!(saved.scale, Scale::Large);
        assert_eq!(saved.markdown(), r.markdown());
    }
}
