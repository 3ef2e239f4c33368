//! `--plot` and `tracer bench --plot`: the SVG parsed, and rendered to pixels.

use std::path::Path;

use tracer::export::plot;

use super::*;

/// Renders an SVG to a PNG that is not blank, in which the thread and the
/// process colors each cover more than `min_pixels` pixels.
fn assert_lines_visible(svg: &str, png: &Path, min_pixels: usize) {
    let pixels = render_png(
        svg,
        png,
        &[plot::class_color(Class::Thread), plot::class_color(Class::Process)],
    );
    eprintln!(
        "PNG: thread-colored pixels {}, process-colored {}",
        pixels[0], pixels[1]
    );
    assert!(pixels.iter().all(|&n| n > min_pixels), "lines not visible: {pixels:?}");
}

/// Renders an SVG to pixels and counts, per color, the pixels close to it.
fn render_png(svg: &str, png: &Path, colors: &[plotters::style::RGBColor]) -> Vec<usize> {
    use resvg::{tiny_skia, usvg};
    let tree = usvg::Tree::from_str(svg, &usvg::Options::default()).unwrap();
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height()).unwrap();
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap.save_png(png).unwrap();
    let decoded = tiny_skia::Pixmap::load_png(png).unwrap();
    let pixels = decoded.pixels();
    let not_white = pixels
        .iter()
        .filter(|p| (p.red(), p.green(), p.blue()) != (255, 255, 255))
        .count();
    assert!(
        not_white * 100 > pixels.len(),
        "blank: {not_white} of {} pixels drawn",
        pixels.len()
    );
    colors
        .iter()
        .map(|c| {
            pixels
                .iter()
                .filter(|p| p.red().abs_diff(c.0) < 24 && p.green().abs_diff(c.1) < 24 && p.blue().abs_diff(c.2) < 24)
                .count()
        })
        .collect()
}

/// The data lines of a plot, by color: polylines of more than two points
/// (axes, ticks and legend swatches have two).
fn lines_by_color(svg: &str) -> Vec<(String, Vec<(i64, i64)>)> {
    let doc = roxmltree::Document::parse(svg).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .map(|n| {
            let points: Vec<(i64, i64)> = n
                .attribute("points")
                .unwrap()
                .split_whitespace()
                .map(|p| {
                    let (x, y) = p.split_once(',').unwrap();
                    (x.parse().unwrap(), y.parse().unwrap())
                })
                .collect();
            (n.attribute("stroke").unwrap().to_ascii_uppercase(), points)
        })
        .filter(|(_, points)| points.len() > 2)
        .collect()
}

fn hex(c: plotters::style::RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
}

/// `--plot`: one chart per metric, in each a rising line for every class
/// with samples; the picture renders to a PNG that shows them.
#[test]
fn plot_has_a_line_per_class() {
    let dir = TempDir::new("plot");
    let svg_path = dir.0.join("tracer.svg");
    let mut tracer = spawn_tracer(["--json", "-d", "3s", "--plot", svg_path.to_str().unwrap()]);
    std::thread::sleep(Duration::from_millis(500));
    for kind in [PingPong::Threads, PingPong::Processes] {
        workload::run(&Spec::new(kind, workload_cpu(), 30_000)).unwrap();
    }
    let (status, stdout) = tracer.finish();
    assert!(status.success());
    let report = parse_report(stdout.trim());
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let lines = lines_by_color(&svg);
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let texts: Vec<&str> = doc.descendants().filter_map(|n| n.text()).collect();
    for metric in Metric::ALL {
        let title = format!("{} by percentile", metric.key());
        assert!(texts.iter().any(|t| t.contains(&title)), "no chart {title}");
    }
    for class in Class::ALL {
        let charts = Metric::ALL
            .iter()
            .filter(|m| report["classes"][class.name()][m.key()]["count"].as_u64().unwrap() > 0)
            .count();
        let color = hex(plot::class_color(class));
        let drawn: Vec<_> = lines.iter().filter(|(c, _)| *c == color).collect();
        eprintln!(
            "{}: {} lines for {charts} metrics with samples",
            class.name(),
            drawn.len()
        );
        assert_eq!(
            drawn.len(),
            charts,
            "{}: one line per chart it has samples in",
            class.name()
        );
        for (_, points) in drawn {
            // Left to right, and never down (SVG's y grows downwards).
            assert!(
                points.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 >= w[1].1),
                "{points:?}"
            );
        }
    }
    assert!(class_switches(&report, "thread") > 0 && class_switches(&report, "process") > 0);
    assert_lines_visible(&svg, &dir.0.join("tracer.png"), 500);
}

/// `tracer bench --plot`: one chart with the thread and the process workload.
#[test]
fn bench_plot_has_both_workloads() {
    let dir = TempDir::new("bench-plot");
    let svg_path = dir.0.join("bench.svg");
    let out = tracer_cmd()
        .args(["bench", "--runs", "2", "--round-trips", "20000", "--json", "--plot"])
        .arg(&svg_path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(svg.contains("tracer bench: switch_cost_ns by percentile (2 runs x 20000 round trips)"));
    let lines = lines_by_color(&svg);
    let colors: Vec<&str> = lines.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(
        colors,
        [
            hex(plot::class_color(Class::Thread)),
            hex(plot::class_color(Class::Process))
        ],
        "one line per workload"
    );
    for name in ["thread ping-pong", "process ping-pong"] {
        assert!(svg.contains(name), "no legend {name}");
    }
    assert_lines_visible(&svg, &dir.0.join("bench.png"), 300);
}
