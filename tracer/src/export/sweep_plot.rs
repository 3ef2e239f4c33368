//! `tracer bench --sweep --plot FILE.svg`: the process/thread ratio of the
//! time per switch by working set, one line per ring size, drawn with
//! `plotters` as SVG.

use std::{fs::File, io::Write as _};

use plotters::prelude::{
    BLACK, ChartBuilder, Color as _, IntoDrawingArea as _, LineSeries, PathElement, SVGBackend, SeriesLabelPosition,
    WHITE,
};

use super::plot::{CHART_SIZE, PlotError};
use crate::bench::{render::fmt_size, sweep::Sweep};

/// Lines of one colour per ring size, in the order of the rings.
const COLORS: [plotters::style::RGBColor; 6] = [
    plotters::style::RGBColor(31, 119, 180),
    plotters::style::RGBColor(255, 127, 14),
    plotters::style::RGBColor(44, 160, 44),
    plotters::style::RGBColor(214, 39, 40),
    plotters::style::RGBColor(148, 103, 189),
    plotters::style::RGBColor(140, 86, 75),
];

/// (ring, points of (working-set index, ratio)) for the cells measured.
pub fn lines(sweep: &Sweep) -> Vec<(usize, Vec<(f64, f64)>)> {
    sweep
        .options
        .rings
        .iter()
        .map(|&ring| {
            let points = sweep
                .options
                .working_sets
                .iter()
                .enumerate()
                .filter_map(|(i, &ws)| {
                    let cell = sweep.cells.iter().find(|c| c.ring == ring && c.working_set == ws)?;
                    let (t, p) = (cell.figures(&cell.thread)?, cell.figures(&cell.process)?);
                    (t.per_switch_ns > 0.0).then(|| (i as f64, p.per_switch_ns / t.per_switch_ns))
                })
                .collect();
            (ring, points)
        })
        .collect()
}

pub fn render_svg(sweep: &Sweep) -> Result<String, PlotError> {
    let draw = |e: &dyn std::fmt::Display| PlotError::Draw(e.to_string());
    let lines = lines(sweep);
    let sets = &sweep.options.working_sets;
    let high = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|p| p.1))
        .fold(1.5f64, f64::max)
        * 1.1;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, CHART_SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw(&e))?;
        let mut ctx = ChartBuilder::on(&root)
            .caption(
                "tracer bench --sweep: process / thread time per switch",
                ("sans-serif", 20),
            )
            .margin(12)
            .margin_right(40)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.2f64..(sets.len().max(2) - 1) as f64 + 0.2, 0f64..high)
            .map_err(|e| draw(&e))?;
        ctx.configure_mesh()
            .x_labels(sets.len().max(2))
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 0.01 && i >= 0.0 {
                    sets.get(i as usize).map_or_else(String::new, |ws| fmt_size(*ws))
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y| format!("{y:.1}x"))
            .x_desc("working set per task")
            .y_desc("process / thread")
            .draw()
            .map_err(|e| draw(&e))?;
        for (n, (ring, points)) in lines.iter().enumerate() {
            let color = COLORS[n % COLORS.len()];
            ctx.draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))
                .map_err(|e| draw(&e))?
                .label(format!("ring of {ring}"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        }
        ctx.configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| draw(&e))?;
        root.present().map_err(|e| draw(&e))?;
    }
    Ok(svg)
}

/// Renders and writes the chart into `file`.
pub fn write(mut file: File, sweep: &Sweep) -> Result<(), PlotError> {
    file.write_all(render_svg(sweep)?.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{bench::sweep::fake, workload::PingPong};

    #[test]
    fn a_line_per_ring_and_the_working_sets_on_the_axis() {
        let sweep = fake(&[2, 8, 32], &[0, 4096, 1 << 20], |kind, ring, _| {
            if kind == PingPong::Processes {
                4000.0 + 100.0 * ring as f64
            } else {
                4000.0
            }
        });
        let lines = lines(&sweep);
        assert_eq!(lines.len(), 3);
        assert!((lines[2].1[0].1 - 1.8).abs() < 0.01, "{lines:?}");
        let svg = render_svg(&sweep).unwrap();
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let texts: Vec<&str> = doc.descendants().filter_map(|n| n.text()).collect();
        for want in ["ring of 2", "ring of 32", "4 KiB", "1 MiB", "process / thread"] {
            assert!(texts.iter().any(|t| t.contains(want)), "no text {want}: {texts:?}");
        }
    }
}
