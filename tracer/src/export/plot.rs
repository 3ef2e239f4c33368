//! `--plot FILE.svg`: latency by percentile, one chart per metric and one
//! line per class, on the log scale HdrHistogram's plots use (0 %, 90 %,
//! 99 %, 99.9 %, ... equally spaced), drawn with `plotters` as SVG. Text is
//! SVG text, so no fonts are needed to write it.

use std::{fs::File, io::Write as _};

use plotters::{
    coord::combinators::IntoLogRange as _,
    prelude::{
        BLACK, ChartBuilder, Color as _, IntoDrawingArea as _, LineSeries, PathElement, RGBColor, SVGBackend,
        SeriesLabelPosition, WHITE,
    },
};
use tracer_common::Class;

use crate::{report::fmt_ns, snapshot::ClassHistogram, snapshot::Snapshot, snapshot::metrics::Metric};

/// The x axis ends at 99.999 % (x = 5: five nines).
pub const X_MAX: f64 = 5.0;
/// Points per decade of the x axis.
const STEPS_PER_NINE: usize = 50;
/// Size of one chart, in pixels.
pub const CHART_SIZE: (u32, u32) = (800, 450);

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("cannot draw the plot: {0}")]
    Draw(String),
    #[error("cannot write the plot: {0}")]
    Io(#[from] std::io::Error),
}

/// One line: latency in ns at x = -log10(1 - percentile/100).
#[derive(Clone, Debug)]
pub struct Curve {
    pub label: String,
    pub color: RGBColor,
    pub points: Vec<(f64, f64)>,
}

#[derive(Clone, Debug)]
pub struct Chart {
    pub title: String,
    pub curves: Vec<Curve>,
}

/// The color of a class's line, the same in every chart.
pub fn class_color(class: Class) -> RGBColor {
    match class {
        Class::Idle => RGBColor(127, 127, 127),
        Class::Kernel => RGBColor(44, 160, 44),
        Class::Thread => RGBColor(31, 119, 180),
        Class::Process => RGBColor(214, 39, 40),
    }
}

/// A percentile as the x axis shows it: 0 -> "0%", 2 -> "99%", 3 -> "99.9%".
pub fn percentile_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 10f64.powf(-x));
    let nines = x.round() as usize;
    if (x - x.round()).abs() < 1e-9 && nines >= 2 {
        format!("{p:.*}%", nines - 2)
    } else {
        format!("{}%", (p * 1000.0).round() / 1000.0)
    }
}

/// The latency-by-percentile line of one histogram; `None` when it is empty.
/// It ends at the percentile its sample count can still tell apart from the
/// maximum (1 - 1/count), or at 99.999 %.
pub fn percentile_curve(h: &ClassHistogram) -> Option<Vec<(f64, f64)>> {
    let hdr = h.to_hdr();
    let count = hdr.len();
    if count == 0 {
        return None;
    }
    let end = (count as f64).log10().min(X_MAX);
    let steps = (end * STEPS_PER_NINE as f64).ceil() as usize;
    let mut points: Vec<(f64, f64)> = (0..=steps)
        .map(|i| {
            let x = (i as f64 / STEPS_PER_NINE as f64).min(end);
            let q = 1.0 - 10f64.powf(-x);
            (x, hdr.value_at_quantile(q).max(1) as f64)
        })
        .collect();
    points.push((end, hdr.max().max(1) as f64));
    Some(points)
}

/// One chart per measured metric of `delta`, one line per class with samples.
pub fn charts(delta: &Snapshot) -> Vec<Chart> {
    Metric::ALL
        .into_iter()
        .filter_map(|metric| {
            let hists = delta.latency(metric)?;
            let curves = Class::ALL
                .into_iter()
                .filter_map(|class| {
                    Some(Curve {
                        label: class.name().to_owned(),
                        color: class_color(class),
                        points: percentile_curve(&hists[class.index()])?,
                    })
                })
                .collect();
            Some(Chart {
                title: format!("{} by percentile", metric.key()),
                curves,
            })
        })
        .collect()
}

/// `tracer bench`: switch cost by percentile, one line per workload, all
/// runs together.
pub fn bench_chart(bench: &crate::bench::Bench) -> Chart {
    let curves = [&bench.thread, &bench.process]
        .into_iter()
        .filter_map(|w| {
            Some(Curve {
                label: format!("{} ping-pong", w.name()),
                color: class_color(w.expected()),
                points: percentile_curve(&w.cost_histogram()?)?,
            })
        })
        .collect();
    Chart {
        title: format!(
            "tracer bench: switch_cost_ns by percentile ({} runs x {} round trips)",
            bench.options.runs, bench.options.round_trips
        ),
        curves,
    }
}

/// Draws the charts one under the other into an SVG document.
pub fn render_svg(charts: &[Chart]) -> Result<String, PlotError> {
    let draw = |e: &dyn std::fmt::Display| PlotError::Draw(e.to_string());
    let mut svg = String::new();
    {
        let rows = charts.len().max(1);
        let size = (CHART_SIZE.0, CHART_SIZE.1 * rows as u32);
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw(&e))?;
        for (area, chart) in root.split_evenly((rows, 1)).iter().zip(charts) {
            let values = chart.curves.iter().flat_map(|c| c.points.iter().map(|p| p.1));
            let (low, high) = values.fold((f64::MAX, 1f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
            // Whole decades around the data, so that the axis has ticks.
            let low = 10f64.powf(low.min(high).log10().floor()).max(1.0);
            let high = 10f64.powf((high.log10() + 1e-9).ceil()).max(low * 10.0);
            let mut ctx = ChartBuilder::on(area)
                .caption(&chart.title, ("sans-serif", 20))
                .margin(12)
                .margin_right(40)
                .x_label_area_size(40)
                .y_label_area_size(70)
                .build_cartesian_2d(0f64..X_MAX, (low..high).log_scale())
                .map_err(|e| draw(&e))?;
            ctx.configure_mesh()
                .x_labels(6)
                .x_label_formatter(&|x| percentile_label(*x))
                .y_label_formatter(&|y| fmt_ns(*y as u64))
                .x_desc("percentile")
                .y_desc("latency")
                .draw()
                .map_err(|e| draw(&e))?;
            for curve in &chart.curves {
                let color = curve.color;
                ctx.draw_series(LineSeries::new(curve.points.iter().copied(), color.stroke_width(2)))
                    .map_err(|e| draw(&e))?
                    .label(curve.label.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
            }
            if !chart.curves.is_empty() {
                ctx.configure_series_labels()
                    .position(SeriesLabelPosition::UpperLeft)
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .draw()
                    .map_err(|e| draw(&e))?;
            }
        }
        root.present().map_err(|e| draw(&e))?;
    }
    Ok(svg)
}

/// Renders and writes the charts into `file`.
pub fn write(mut file: File, charts: &[Chart]) -> Result<(), PlotError> {
    let svg = render_svg(charts)?;
    file.write_all(svg.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{report::tests::Rng, snapshot::metrics::MetricSet};

    #[test]
    fn labels_percentiles() {
        assert_eq!(percentile_label(0.0), "0%");
        assert_eq!(percentile_label(1.0), "90%");
        assert_eq!(percentile_label(2.0), "99%");
        assert_eq!(percentile_label(3.0), "99.9%");
        assert_eq!(percentile_label(5.0), "99.999%");
        assert_eq!(percentile_label(0.5), "68.377%");
    }

    #[test]
    fn curve_rises_to_the_max() {
        let mut h = ClassHistogram::default();
        let mut rng = Rng(7);
        for _ in 0..10_000 {
            h.record(rng.log_uniform(1e3, 1e6));
        }
        let c = percentile_curve(&h).unwrap();
        assert!(c.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1), "monotone");
        assert_eq!(c.last().unwrap().0, 4.0, "ends at 1 - 1/count = 99.99 %");
        let p50 = c.iter().find(|p| (p.0 - 0.3).abs() < 1e-9).unwrap().1; // x = 0.3: 49.9 %
        assert!(
            (25_000.0..40_000.0).contains(&p50),
            "median of log-uniform 1us..1ms ~ 31.6us: {p50}"
        );
        assert!(percentile_curve(&ClassHistogram::default()).is_none());
    }

    #[test]
    fn svg_has_a_chart_per_metric_and_a_line_per_class() {
        let mut s = Snapshot::empty(1, MetricSet::NONE.with(Metric::SwitchCost).with(Metric::Oncpu));
        for i in 0..1000 {
            s.record(
                0,
                Class::Thread,
                true,
                &[(Metric::SwitchCost, 400 + i), (Metric::Oncpu, 3000 + i)],
            );
            s.record(0, Class::Process, true, &[(Metric::SwitchCost, 600 + i)]);
        }
        let charts = charts(&s);
        assert_eq!(charts.len(), 2);
        assert_eq!(charts[0].curves.len(), 2);
        assert_eq!(charts[1].curves.len(), 1, "no oncpu samples for process");
        let svg = render_svg(&charts).unwrap();
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let texts: Vec<&str> = doc.descendants().filter_map(|n| n.text()).collect();
        for want in [
            "switch_cost_ns by percentile",
            "oncpu_ns by percentile",
            "thread",
            "process",
            "99.9%",
        ] {
            assert!(texts.iter().any(|t| t.contains(want)), "no text {want}: {texts:?}");
        }
    }
}
