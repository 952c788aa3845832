//! The book's pictures, drawn as SVG with plotters (no font files, no network: a browser
//! renders the text):
//!
//! - chapter 16's charts and tables, from the benchmark's `contention.json`;
//! - the timelines of a real race, from the operations the benchmark recorded
//!   (`timeline.json`);
//! - chapter 18.1's race through a paused primary and a killed one, second by second
//!   (`paused_primary.json`, which the example writes);
//! - the sequence diagrams of chapters 3 and 4, each step checked against the recorded output
//!   of the run it pictures, so that a picture cannot tell a different story than the run.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use plotters::coord::Shift;
use plotters::prelude::*;
use serde_json::Value;

const WIDTH: u32 = 760;
const FONT: &str = "sans-serif";

/// The colour of each strategy, the same in every chart.
fn colour(strategy: &str) -> RGBColor {
    match strategy {
        "none" => RGBColor(200, 55, 45),
        "occ" => RGBColor(35, 105, 175),
        "server" => RGBColor(40, 140, 60),
        _ => RGBColor(130, 80, 170),
    }
}

fn read_json(path: &Path) -> Result<Value> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("parsing {}", path.display()))
}

fn plot_error<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing: {e:?}")
}

fn f(value: &Value) -> f64 {
    value.as_f64().unwrap_or(f64::NAN)
}

/// Strategies in the order the data lists them.
fn strategies(cells: &[Value]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for cell in cells {
        let name = cell["strategy"].as_str().unwrap_or("?").to_string();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// `(clients, value)` for one strategy.
fn series(
    cells: &[Value],
    strategy: &str,
    value: impl Fn(&Value) -> f64,
) -> Vec<(f64, f64)> {
    cells
        .iter()
        .filter(|c| c["strategy"] == strategy)
        .map(|c| ((f(&c["clients"])).log2(), value(c)))
        .filter(|(_, y)| y.is_finite())
        .collect()
}

/// What the chart's caption names: the machine and the servers.
fn machine(data: &Value) -> String {
    let m = &data["machine"];
    format!(
        "{} cores ({}), {} GiB",
        m["cores"],
        m["cpu"].as_str().unwrap_or("unknown CPU"),
        m["memory_gib"]
    )
}

fn servers(data: &Value) -> String {
    let mut by_version: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (strategy, server) in data["servers"].as_object().into_iter().flatten() {
        by_version
            .entry(server["version"].as_str().unwrap_or("?").to_string())
            .or_default()
            .push(strategy.clone());
    }
    by_version
        .iter()
        .map(|(v, s)| format!("Elasticsearch {v} ({})", s.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A line chart against the number of clients (log scale).
struct LineChart<'a> {
    file: &'a str,
    title: &'a str,
    y_label: &'a str,
    lines: Vec<Line>,
    caption: String,
    legend: SeriesLabelPosition,
}

struct Line {
    label: String,
    colour: RGBColor,
    dashed: bool,
    points: Vec<(f64, f64)>,
}

impl Line {
    /// A line in `strategy`'s colour.
    fn of(
        strategy: &str,
        label: String,
        dashed: bool,
        points: Vec<(f64, f64)>,
    ) -> Line {
        Line {
            label,
            colour: colour(strategy),
            dashed,
            points,
        }
    }
}

impl LineChart<'_> {
    fn draw(&self, dir: &Path, clients: &[f64]) -> Result<()> {
        let path = dir.join(self.file);
        let root = SVGBackend::new(&path, (WIDTH, 440)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let (body, foot) = root.split_vertically(410);
        foot.draw(&Text::new(
            self.caption.clone(),
            (10, 8),
            (FONT, 12).into_font().color(&RGBColor(90, 90, 90)),
        ))
        .map_err(plot_error)?;
        let top = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.1))
            .fold(0.0f64, f64::max)
            .max(1e-9)
            * 1.12;
        let xs: Vec<f64> = clients.iter().map(|c| c.log2()).collect();
        let (x0, x1) = (
            xs.iter().copied().fold(f64::MAX, f64::min) - 0.3,
            xs.iter().copied().fold(f64::MIN, f64::max) + 0.3,
        );
        let mut chart = ChartBuilder::on(&body)
            .caption(self.title, (FONT, 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, 0.0..top)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc("clients incrementing at once")
            .y_desc(self.y_label)
            .x_labels(xs.len() + 1)
            .x_label_formatter(&|x| {
                // Only the powers of two the runs used are labelled.
                if (x - x.round()).abs() < 1e-6 {
                    format!("{}", 2f64.powf(*x).round())
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y| {
                if top >= 10.0 {
                    format!("{y:.0}")
                } else {
                    format!("{y:.1}")
                }
            })
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 13))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(plot_error)?;
        for line in &self.lines {
            let style = ShapeStyle::from(&line.colour).stroke_width(2);
            let legend = move |(x, y): (i32, i32)| {
                PathElement::new(vec![(x, y), (x + 22, y)], style)
            };
            if line.dashed {
                chart
                    .draw_series(DashedLineSeries::new(
                        line.points.clone(),
                        6,
                        4,
                        style,
                    ))
                    .map_err(plot_error)?
                    .label(&line.label)
                    .legend(legend);
                chart
                    .draw_series(
                        line.points.iter().map(|&p| {
                            Cross::new(p, 4, line.colour.stroke_width(2))
                        }),
                    )
                    .map_err(plot_error)?;
            } else {
                chart
                    .draw_series(LineSeries::new(line.points.clone(), style))
                    .map_err(plot_error)?
                    .label(&line.label)
                    .legend(legend);
                chart
                    .draw_series(
                        line.points
                            .iter()
                            .map(|&p| Circle::new(p, 3, line.colour.filled())),
                    )
                    .map_err(plot_error)?;
            }
        }
        chart
            .configure_series_labels()
            .position(self.legend.clone())
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .label_font((FONT, 12))
            .draw()
            .map_err(plot_error)?;
        root.present().map_err(plot_error)?;
        Ok(())
    }
}

/// Chapter 16's charts and tables from `DATA/contention.json`, into `out`.
/// The charts and tables of `DATA_DIR/contention.json`, named `PREFIX-*.svg` and `PREFIX-*.md`.
pub fn contention(data_dir: &Path, out: &Path, prefix: &str) -> Result<()> {
    let data = read_json(&data_dir.join("contention.json"))?;
    let cells: Vec<Value> = data["cells"].as_array().cloned().unwrap_or_default();
    if cells.is_empty() {
        bail!("{}: no cells", data_dir.join("contention.json").display());
    }
    fs::create_dir_all(out)?;
    let mut clients: Vec<f64> = cells.iter().map(|c| f(&c["clients"])).collect();
    clients.sort_by(f64::total_cmp);
    clients.dedup();
    let names = strategies(&cells);
    let caption = format!("{}; {}", machine(&data), servers(&data));
    let reps = &data["settings"]["reps"];
    let increments = &data["settings"]["increments"];

    let draw = |file: String, title: &str, y_label, lines, legend| {
        LineChart {
            file: &file,
            title,
            y_label,
            lines,
            caption: caption.clone(),
            legend,
        }
        .draw(out, &clients)
    };
    let rust = |name: &str, value: fn(&Value) -> f64| {
        Line::of(
            name,
            format!("{name}, Rust"),
            false,
            series(&cells, name, value),
        )
    };

    let mut throughput: Vec<Line> = names
        .iter()
        .map(|name| rust(name, |c| f(&c["rust"]["correct_per_s"])))
        .collect();
    for name in &names {
        let points = series(&cells, name, |c| f(&c["notebook"]["correct_per_s"]));
        if !points.is_empty() {
            let label = format!("{name}, notebook's Python");
            throughput.push(Line::of(name, label, true, points));
        }
    }
    draw(
        format!("{prefix}-throughput.svg"),
        &format!(
            "Correct increments per second ({increments} per run, median of {reps})"
        ),
        "increments counted per second",
        throughput,
        SeriesLabelPosition::UpperLeft,
    )?;

    let conflicts = names
        .iter()
        .filter(|n| n.as_str() != "none")
        .map(|name| rust(name, |c| f(&c["rust"]["conflicts_per_success"])))
        .collect();
    draw(
        format!("{prefix}-conflicts.svg"),
        "Conflicts the client saw per successful increment",
        "409s per increment that landed",
        conflicts,
        SeriesLabelPosition::UpperLeft,
    )?;

    let ceiling = names
        .iter()
        .map(|name| {
            let best = cells
                .iter()
                .filter(|c| c["strategy"] == name.as_str())
                .map(|c| f(&c["ceiling"]["correct_per_s"]))
                .fold(0.0, f64::max);
            let points = series(&cells, name, |c| {
                100.0 * f(&c["rust"]["correct_per_s"]) / best
            });
            Line::of(name, format!("{name}, Rust"), false, points)
        })
        .collect();
    draw(
        format!("{prefix}-ceiling.svg"),
        "Share of the ceiling (the same requests, each client on its own document)",
        "% of the best uncontended throughput",
        ceiling,
        SeriesLabelPosition::UpperRight,
    )?;

    let latency = names
        .iter()
        .flat_map(|name| {
            [
                Line::of(
                    name,
                    format!("{name}, p50"),
                    false,
                    series(&cells, name, |c| f(&c["rust"]["p50_ms"])),
                ),
                Line::of(
                    name,
                    format!("{name}, p99"),
                    true,
                    series(&cells, name, |c| f(&c["rust"]["p99_ms"])),
                ),
            ]
        })
        .collect();
    draw(
        format!("{prefix}-latency.svg"),
        "Latency of one increment, retries included (Rust)",
        "milliseconds",
        latency,
        SeriesLabelPosition::UpperLeft,
    )?;

    fs::write(out.join(format!("{prefix}-cells.md")), cells_table(&cells))?;
    if cells.iter().any(|c| !c["notebook"].is_null()) {
        fs::write(
            out.join(format!("{prefix}-notebook.md")),
            notebook_table(&data, &cells),
        )?;
    }
    Ok(())
}

/// The numbers behind the charts, as a Markdown table the chapter includes.
fn cells_table(cells: &[Value]) -> String {
    let mut best: BTreeMap<String, f64> = BTreeMap::new();
    for cell in cells {
        let entry = best
            .entry(cell["strategy"].as_str().unwrap_or("?").to_string())
            .or_insert(0.0);
        *entry = entry.max(f(&cell["ceiling"]["correct_per_s"]));
    }
    let mut text = String::from(
        "| strategy | clients | correct/s | of ceiling | lost (worst run) | conflicts per increment | p50 ms | p99 ms | client CPU ms |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for cell in cells {
        let rust = &cell["rust"];
        let name = cell["strategy"].as_str().unwrap_or("?");
        text += &format!(
            "| {name} | {} | {:.0} | {:.0}% | {} of {} | {:.2} | {:.1} | {:.1} | {:.0} |\n",
            cell["clients"],
            f(&rust["correct_per_s"]),
            100.0 * f(&rust["correct_per_s"]) / best[name],
            rust["lost"],
            cell["increments"],
            f(&rust["conflicts_per_success"]),
            f(&rust["p50_ms"]),
            f(&rust["p99_ms"]),
            f(&rust["cpu_ms"]),
        );
    }
    text += "\nCeiling (the same requests, every client on its own document, best over client counts): ";
    text += &best
        .iter()
        .map(|(name, per_s)| format!("{name} {per_s:.0}/s"))
        .collect::<Vec<_>>()
        .join(", ");
    text += ".\n";
    text
}

fn notebook_table(data: &Value, cells: &[Value]) -> String {
    let mut text = String::from(
        "| strategy | clients | Rust correct/s | Python correct/s | Python short of the count (worst run) | Python threads that died | wall time, Rust / Python | client CPU, Rust / Python |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for cell in cells {
        let (rust, py) = (&cell["rust"], &cell["notebook"]);
        if py.is_null() {
            continue;
        }
        let died = py["thread_errors"].as_array().map_or(0, Vec::len);
        text += &format!(
            "| {} | {} | {:.0} | {:.0} | {} | {} | {:.2} | {:.2} |\n",
            cell["strategy"].as_str().unwrap_or("?"),
            cell["clients"],
            f(&rust["correct_per_s"]),
            f(&py["correct_per_s"]),
            py["lost"],
            if died == 0 {
                "0".to_string()
            } else {
                format!("{died} (409)")
            },
            f(&rust["wall_ms"]) / f(&py["wall_ms"]),
            f(&rust["cpu_ms"]) / f(&py["cpu_ms"]),
        );
    }
    let readers = data["readers_race"].as_array().cloned().unwrap_or_default();
    if !readers.is_empty() {
        text += "\n\n| 5 clients x 50 | build of counter_race | wall ms | client CPU ms | wall, Rust / Python | CPU, Rust / Python |\n\
                 | --- | --- | ---: | ---: | ---: | ---: |\n";
        for race in &readers {
            let strategy = race["strategy"].as_str().unwrap_or("?");
            let py = &race["notebook"];
            text += &format!(
                "| {strategy} | the notebook's Python | {:.0} | {:.0} | | |\n",
                f(&py["wall_ms"]),
                f(&py["cpu_ms"]),
            );
            let order =
                ["opt0", "dev", "hot", "deps1", "deps2", "lean1", "release"];
            let mut builds: Vec<(&String, &Value)> = race
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(name, build)| *name != "notebook" && build.is_object())
                .collect();
            builds.sort_by_key(|(name, _)| {
                order.iter().position(|o| o == name).unwrap_or(order.len())
            });
            for (name, build) in builds {
                text += &format!(
                    "| {strategy} | {} | {:.0} | {:.0} | {:.2} | {:.2} |\n",
                    build_name(name),
                    f(&build["wall_ms"]),
                    f(&build["cpu_ms"]),
                    f(&build["wall_ms"]) / f(&py["wall_ms"]),
                    f(&build["cpu_ms"]) / f(&py["cpu_ms"]),
                );
            }
        }
    }
    text
}

/// What a build of counter_race that the benchmark ran is called in the book.
fn build_name(name: &str) -> String {
    let name = match name {
        "dev" => "`cargo run --example counter_race`: this book's dev profile",
        "opt0" => "Cargo's default dev profile (dependencies at opt-level 0)",
        "deps1" => "dependencies at opt-level 1",
        "deps2" => "dependencies at opt-level 2",
        "lean1" => "dependencies at opt-level 1, no debug info or assertions",
        "hot" => "16 hot dependencies at opt-level 1, with debug info",
        "release" => "`--release`",
        other => return format!("`{other}`"),
    };
    name.to_string()
}

/// The timeline of each recorded race in `DATA/timeline.json`: `timeline-none.svg`, ...
pub fn timelines(data_dir: &Path, out: &Path) -> Result<()> {
    let data = read_json(&data_dir.join("timeline.json"))?;
    fs::create_dir_all(out)?;
    for race in data["races"].as_array().into_iter().flatten() {
        let strategy = race["strategy"].as_str().unwrap_or("?");
        let path = out.join(format!("timeline-{strategy}.svg"));
        timeline(race, &data["server_version"], &path)?;
    }
    Ok(())
}

fn timeline(race: &Value, version: &Value, path: &Path) -> Result<()> {
    let ops = race["ops"].as_array().cloned().unwrap_or_default();
    let clients = race["clients"].as_u64().unwrap_or(1) as usize;
    let end = ops.iter().map(|o| f(&o["end_us"])).fold(0.0, f64::max) / 1000.0;
    let lane_height = 70;
    let height = 130 + lane_height * clients as u32;
    let root = SVGBackend::new(path, (WIDTH + 240, height)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let strategy = race["strategy"].as_str().unwrap_or("?");
    let expected = race["clients"].as_u64().unwrap_or(0)
        * race["per_client"].as_u64().unwrap_or(0);
    let title = format!(
        "A real race, strategy {strategy}: {clients} clients x {} increments, the counter ended at {} of {expected} (Elasticsearch {})",
        race["per_client"],
        race["final"],
        version.as_str().unwrap_or("?")
    );
    let (plot, _legend_row) = root.split_vertically(height - 30);
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, (FONT, 15))
        .margin(14)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..end * 1.02, -0.5..(clients as f64 - 0.5))
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(clients)
        .y_label_formatter(&|y| {
            format!("client {}", (b'A' + y.round() as u8) as char)
        })
        .x_desc("milliseconds since the race began")
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 13))
        .light_line_style(RGBColor(240, 240, 240))
        .draw()
        .map_err(plot_error)?;

    // Which read each write was computed from: the client's last read before it.
    let mut last_read: BTreeMap<u64, i64> = BTreeMap::new();
    let read_colour = RGBColor(150, 180, 215);
    let (good, stale, conflict) = (
        RGBColor(40, 140, 60),
        RGBColor(200, 55, 45),
        RGBColor(235, 145, 30),
    );
    for op in &ops {
        let client = op["client"].as_u64().unwrap_or(0);
        let y = client as f64;
        let (x0, x1) = (f(&op["start_us"]) / 1000.0, f(&op["end_us"]) / 1000.0);
        let seq = op["seq_no"].as_i64().unwrap_or(-1);
        let value = op["value"].as_i64().unwrap_or(-1);
        let (fill, label, above) = match op["kind"].as_str() {
            Some("read") => {
                last_read.insert(client, seq);
                (read_colour, format!("read {value}"), true)
            }
            Some("write") => {
                let read = last_read.get(&client).copied().unwrap_or(seq - 1);
                let between = seq - read - 1;
                if between > 0 {
                    (stale, format!("wrote {value}, stale by {between}"), false)
                } else {
                    (good, format!("wrote {value}"), false)
                }
            }
            _ => (conflict, "409".to_string(), false),
        };
        let (top, bottom) = if above {
            (y + 0.32, y + 0.04)
        } else {
            (y - 0.04, y - 0.32)
        };
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x0, top), (x1.max(x0 + end / 400.0), bottom)],
                fill.filled(),
            )))
            .map_err(plot_error)?;
        let label_y = if above { y + 0.46 } else { y - 0.36 };
        chart
            .draw_series(std::iter::once(Text::new(
                label,
                (x0, label_y),
                (FONT, 10).into_font().color(&RGBColor(50, 50, 50)),
            )))
            .map_err(plot_error)?;
    }
    let legend = [
        (read_colour, "read (value seen)"),
        (good, "write that counted"),
        (
            stale,
            "write from a stale read (stale by N: N writes landed since)",
        ),
        (conflict, "conditional write rejected (409)"),
    ];
    let area: &DrawingArea<SVGBackend, Shift> = &root;
    let mut x = 20;
    for (fill, text) in legend {
        area.draw(&Rectangle::new(
            [(x, height as i32 - 22), (x + 14, height as i32 - 10)],
            fill.filled(),
        ))
        .map_err(plot_error)?;
        area.draw(&Text::new(
            text,
            (x + 18, height as i32 - 22),
            (FONT, 12).into_font(),
        ))
        .map_err(plot_error)?;
        x += 34 + 6 * text.len() as i32;
    }
    root.present().map_err(plot_error)?;
    Ok(())
}

/// Chapter 18.1's race, second by second, through a pause and a kill, from
/// `DATA/paused_primary.json` (written by `cargo run --example paused_primary -- --then kill
/// --timeline ...`): `timeline-paused.svg`. Nothing is drawn if the file is missing.
pub fn paused_timeline(data_dir: &Path, out: &Path) -> Result<()> {
    let source = data_dir.join("paused_primary.json");
    if !source.exists() {
        return Ok(());
    }
    let data = read_json(&source)?;
    let timeline = &data["timeline"];
    let seconds = timeline["seconds"].as_array().cloned().unwrap_or_default();
    if seconds.is_empty() {
        bail!("{}: no seconds recorded", source.display());
    }
    let point = |s: &Value, key: &str| (f(&s["second"]) + 0.5, f(&s[key]));
    let acknowledged: Vec<(f64, f64)> =
        seconds.iter().map(|s| point(s, "acknowledged")).collect();
    let conflicted: Vec<(f64, f64)> =
        seconds.iter().map(|s| point(s, "conflicted")).collect();
    let end = seconds.len() as f64;
    let top = acknowledged
        .iter()
        .chain(&conflicted)
        .map(|p| p.1)
        .fold(1.0, f64::max)
        * 1.35;
    fs::create_dir_all(out)?;
    let path = out.join("timeline-paused.svg");
    let root = SVGBackend::new(&path, (WIDTH + 240, 470)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let title = format!(
        "The OCC race through a paused primary, then a killed one (Elasticsearch {})",
        data["server_version"].as_str().unwrap_or("?")
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 16))
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..end, 0.0..top)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("seconds since the race began")
        .y_desc("writes per second")
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 13))
        .light_line_style(RGBColor(240, 240, 240))
        .draw()
        .map_err(plot_error)?;
    let (ack, conflict) = (RGBColor(40, 140, 60), RGBColor(235, 145, 30));
    for (points, colour, label) in [
        (acknowledged, ack, "acknowledged writes per second"),
        (conflicted, conflict, "409 conflicts per second"),
    ] {
        let style = ShapeStyle::from(&colour).stroke_width(2);
        chart
            .draw_series(LineSeries::new(points, style))
            .map_err(plot_error)?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 22, y)], style)
            });
    }
    // Each fault's moment: a grey line, its label above, staggered so that close ones stay
    // readable.
    let grey = RGBColor(110, 110, 110);
    for (i, mark) in timeline["marks"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = f(&mark["at_s"]);
        let what = mark["what"].as_str().unwrap_or("?").to_string();
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(at, 0.0), (at, top * 0.86)],
                ShapeStyle::from(&grey).stroke_width(1),
            )))
            .map_err(plot_error)?;
        let y = top * (0.97 - 0.05 * (i % 4) as f64);
        chart
            .draw_series(std::iter::once(Text::new(
                what,
                (at, y),
                (FONT, 11).into_font().color(&RGBColor(50, 50, 50)),
            )))
            .map_err(plot_error)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::MiddleRight)
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(200, 200, 200))
        .label_font((FONT, 12))
        .draw()
        .map_err(plot_error)?;
    root.present().map_err(plot_error)?;
    Ok(())
}

/// One message of a sequence diagram, and the text of the recorded output that shows it
/// happened.
struct Message {
    from: usize,
    to: usize,
    label: &'static str,
    evidence: &'static str,
    /// A rejected request is drawn in orange.
    rejected: bool,
}

const A: usize = 0;
const ES: usize = 1;
const B: usize = 2;

fn msg(
    from: usize,
    to: usize,
    label: &'static str,
    evidence: &'static str,
) -> Message {
    Message {
        from,
        to,
        label,
        evidence,
        rejected: false,
    }
}

/// The interleavings chapters 3 and 4 narrate, drawn from their recorded outputs.
pub fn sequences(outputs: &Path, out: &Path) -> Result<()> {
    fs::create_dir_all(out)?;
    let lost = [
        msg(A, ES, "GET bank/_doc/12345", "A read  balance 1000"),
        msg(
            ES,
            A,
            "balance 1000, _seq_no 0",
            "A read  balance 1000 (_seq_no 0",
        ),
        msg(B, ES, "GET bank/_doc/12345", "B read  balance 1000"),
        msg(
            ES,
            B,
            "balance 1000, _seq_no 0",
            "B read  balance 1000 (_seq_no 0",
        ),
        msg(A, ES, "PUT balance 800 (1000 - 200)", "A wrote balance 800"),
        msg(
            ES,
            A,
            "200 updated, _seq_no 1",
            "A wrote balance 800: updated (_seq_no 1,",
        ),
        msg(B, ES, "PUT balance 500 (1000 - 500)", "B wrote balance 500"),
        msg(
            ES,
            B,
            "200 updated, _seq_no 2: A's 200 is gone",
            "B wrote balance 500: updated (_seq_no 2,",
        ),
    ];
    sequence(
        &outputs.join("lost_update.txt"),
        &lost,
        "Chapter 3: both read 1000, both write; the balance ends at 500, not 300",
        &out.join("sequence-lost-update.svg"),
    )?;
    let conditional = [
        msg(
            A,
            ES,
            "GET bank/_doc/12345",
            "A and B both read balance 1000",
        ),
        msg(
            ES,
            A,
            "balance 1000, _seq_no 0",
            "A and B both read balance 1000 at _seq_no 0",
        ),
        msg(
            B,
            ES,
            "GET bank/_doc/12345",
            "A and B both read balance 1000",
        ),
        msg(
            ES,
            B,
            "balance 1000, _seq_no 0",
            "A and B both read balance 1000 at _seq_no 0",
        ),
        msg(
            A,
            ES,
            "PUT balance 800 if_seq_no=0",
            "A wrote balance 800 if_seq_no=0",
        ),
        msg(
            ES,
            A,
            "200 updated, _seq_no 1",
            "A wrote balance 800 if_seq_no=0: updated (_seq_no 1,",
        ),
        msg(
            B,
            ES,
            "PUT balance 500 if_seq_no=0",
            "B wrote balance 500 if_seq_no=0",
        ),
        Message {
            rejected: true,
            ..msg(
                ES,
                B,
                "409 version_conflict_engine_exception",
                "rejected with HTTP 409",
            )
        },
        msg(B, ES, "GET again", "B read again"),
        msg(
            ES,
            B,
            "balance 800, _seq_no 1",
            "B read again: balance 800 at _seq_no 1",
        ),
        msg(
            B,
            ES,
            "PUT balance 300 if_seq_no=1",
            "wrote balance 300 if_seq_no=1",
        ),
        msg(
            ES,
            B,
            "200 updated, _seq_no 2: both withdrawals kept",
            "wrote balance 300 if_seq_no=1: updated (_seq_no 2,",
        ),
    ];
    sequence(
        &outputs.join("conditional_write.txt"),
        &conditional,
        "Chapter 4: the same interleaving with if_seq_no; B's stale write is a 409",
        &out.join("sequence-conditional-write.svg"),
    )
}

fn sequence(
    output: &Path,
    messages: &[Message],
    title: &str,
    path: &Path,
) -> Result<()> {
    let recorded = fs::read_to_string(output)
        .with_context(|| format!("reading {}", output.display()))?;
    for m in messages {
        if !recorded.contains(m.evidence) {
            bail!(
                "{}: the diagram shows {:?}, but the recorded run has no {:?}",
                output.display(),
                m.label,
                m.evidence
            );
        }
    }
    let step = 38;
    let height = 110 + step * messages.len() as i32;
    let root = SVGBackend::new(path, (WIDTH, height as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let ink = RGBColor(40, 40, 40);
    let err = |e| plot_error(e);
    root.draw(&Text::new(title, (16, 12), (FONT, 15).into_font()))
        .map_err(err)?;
    let xs = [110, WIDTH as i32 / 2, WIDTH as i32 - 110];
    let names = ["Client A", "Elasticsearch", "Client B"];
    for (x, name) in xs.iter().zip(names) {
        root.draw(&Rectangle::new(
            [(x - 62, 40), (x + 62, 68)],
            RGBColor(235, 240, 248).filled(),
        ))
        .map_err(err)?;
        root.draw(&Rectangle::new([(x - 62, 40), (x + 62, 68)], ink))
            .map_err(err)?;
        root.draw(&Text::new(
            name,
            (x - 4 * name.len() as i32, 47),
            (FONT, 14).into_font(),
        ))
        .map_err(err)?;
        root.draw(&PathElement::new(
            vec![(*x, 68), (*x, height - 16)],
            RGBColor(170, 170, 170).stroke_width(1),
        ))
        .map_err(err)?;
    }
    for (i, m) in messages.iter().enumerate() {
        let y = 96 + step * i as i32;
        let (x0, x1) = (xs[m.from], xs[m.to]);
        let colour = if m.rejected {
            RGBColor(215, 110, 0)
        } else if m.from == ES {
            RGBColor(35, 105, 175)
        } else {
            ink
        };
        root.draw(&PathElement::new(
            vec![(x0, y), (x1, y)],
            colour.stroke_width(2),
        ))
        .map_err(err)?;
        let dir = if x1 > x0 { -1 } else { 1 };
        root.draw(&Polygon::new(
            vec![(x1, y), (x1 + dir * 9, y - 5), (x1 + dir * 9, y + 5)],
            colour.filled(),
        ))
        .map_err(err)?;
        let left = x0.min(x1) + 8;
        root.draw(&Text::new(
            m.label,
            (left, y - 17),
            (FONT, 12).into_font().color(&colour),
        ))
        .map_err(err)?;
    }
    root.present().map_err(plot_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sequence diagrams agree with the recorded outputs of chapters 3 and 4: every message
    /// they draw is in the run.
    #[test]
    fn sequence_diagrams_match_the_recorded_runs() {
        let dir =
            std::env::temp_dir().join(format!("occ-seq-{}", std::process::id()));
        sequences(&crate::book::root().join("src/outputs"), &dir).unwrap();
        let svg =
            fs::read_to_string(dir.join("sequence-conditional-write.svg")).unwrap();
        assert!(svg.contains("409 version_conflict_engine_exception"));
        fs::remove_dir_all(dir).ok();
    }

    /// A diagram whose message is not in the run is refused.
    #[test]
    fn a_message_the_run_does_not_show_is_refused() {
        let dir = std::env::temp_dir()
            .join(format!("occ-seq-bad-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let output = dir.join("run.txt");
        fs::write(&output, "A read  balance 1000\n").unwrap();
        let error = sequence(
            &output,
            &[msg(A, ES, "GET", "B read  balance 1000")],
            "t",
            &dir.join("x.svg"),
        )
        .unwrap_err();
        assert!(error.to_string().contains("has no"), "{error}");
        fs::remove_dir_all(dir).ok();
    }
}
