//! The SVG dashboard.

use std::collections::BTreeMap;

use plotters::coord::ranged1d::SegmentedCoord;
use plotters::coord::types::{RangedCoordf64, RangedCoordusize};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use polyrelay::StatsSnapshot;

use super::models::{ONPREM_MODEL, PROFILES};
use super::report::{HourStats, QtTotals, by_query_type, pct, query_type};
use super::{AnyError, BASELINE, OUTAGE};

fn model_color(model: &str) -> RGBColor {
    match model {
        "gpt-4o-mini" => RGBColor(102, 194, 165),
        "gpt-4o" => RGBColor(27, 120, 98),
        "claude-haiku-4-5" => RGBColor(252, 174, 97),
        "claude-sonnet-4-5" => RGBColor(215, 95, 40),
        "qwen-plus" => RGBColor(158, 154, 224),
        "qwen-max" => RGBColor(84, 62, 170),
        _ => RGBColor(140, 140, 140),
    }
}

fn money(v: f64) -> String {
    if v >= 10.0 {
        format!("${v:.0}")
    } else if v >= 1.0 {
        format!("${v:.1}")
    } else {
        format!("${v:.2}")
    }
}

pub(crate) fn draw_dashboard(
    path: &str,
    day: &StatsSnapshot,
    hours: &[HourStats],
) -> Result<(), AnyError> {
    if let Some(dir) = std::path::Path::new(path).parent() {
        std::fs::create_dir_all(dir)?;
    }
    let root = SVGBackend::new(path, (1400, 1900)).into_drawing_area();
    root.fill(&WHITE)?;
    let (header, body) = root.split_vertically(90);
    let totals = day.totals();
    header.draw(&Text::new(
        "polyrelay · a support-bot day on the vendor simulator",
        (40, 22),
        ("sans-serif", 30).into_font().style(FontStyle::Bold),
    ))?;
    header.draw(&Text::new(
        format!(
            "{} tickets · spend ${:.2} vs ${:.2} on the baseline ({BASELINE}): {:.0} % saved · \
             OpenAI outage {:02}:00–{:02}:00 routed to Anthropic",
            totals.successes + totals.failures,
            totals.cost,
            totals.baseline_cost,
            pct(totals.saved(), totals.baseline_cost),
            OUTAGE.start,
            OUTAGE.end
        ),
        (40, 62),
        ("sans-serif", 18).into_font().color(&RGBColor(70, 70, 70)),
    ))?;
    let panels = body.split_evenly((3, 1));
    let qts: Vec<(String, QtTotals)> = by_query_type(day);
    draw_cost_by_model(&panels[0], day, &qts)?;
    draw_actual_vs_baseline(&panels[1], &qts)?;
    draw_latency(&panels[2], hours)?;
    root.present()?;
    Ok(())
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type QueryTypeChart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<SegmentedCoord<RangedCoordusize>, RangedCoordf64>>;

/// The frame of panels (a) and (b): a segment per query type, spend up to `top`.
fn query_type_chart<'a, 'b>(
    area: &Area<'b>,
    caption: &str,
    names: &[&str],
    top: f64,
) -> Result<QueryTypeChart<'a, 'b>, AnyError> {
    let mut chart = ChartBuilder::on(&area.margin(10, 10, 20, 20))
        .caption(caption, ("sans-serif", 22))
        .margin(10)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d((0..names.len() - 1).into_segmented(), 0f64..top)?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .disable_x_mesh()
        .x_labels(names.len() + 1)
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => names.get(*i).map_or(String::new(), |s| s.to_string()),
            _ => String::new(),
        })
        .y_label_formatter(&|v| money(*v))
        .x_desc("query type")
        .y_desc("spend (USD)")
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 16))
        .draw()?;
    Ok(chart)
}

/// A label centred above the bar of segment `i` whose top is at `y`.
fn above_bar(
    text: String,
    i: usize,
    y: f64,
    size: u32,
) -> Text<'static, (SegmentValue<usize>, f64), String> {
    Text::new(
        text,
        (SegmentValue::CenterOf(i), y),
        ("sans-serif", size)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Bottom)),
    )
}

/// A legend entry's colour square.
fn swatch(color: RGBColor) -> impl Fn((i32, i32)) -> Rectangle<(i32, i32)> {
    move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled())
}

/// The legend of every panel, at `position`.
fn draw_legend<'a, 'b: 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, CT>,
    position: SeriesLabelPosition,
) -> Result<(), AnyError> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(180, 180, 180))
        .label_font(("sans-serif", 15))
        .draw()?;
    Ok(())
}

/// (a) Cost per query type, stacked by model.
fn draw_cost_by_model(
    area: &Area<'_>,
    day: &StatsSnapshot,
    qts: &[(String, QtTotals)],
) -> Result<(), AnyError> {
    let names: Vec<&str> = qts.iter().map(|(q, _)| q.as_str()).collect();
    let mut cost: BTreeMap<(&str, &str), f64> = BTreeMap::new();
    for r in &day.total {
        *cost.entry((query_type(r), r.model.as_str())).or_default() += r.cost;
    }
    let top = qts.iter().map(|(_, t)| t.cost).fold(0.0, f64::max) * 1.18;
    let mut chart = query_type_chart(
        area,
        "(a) Spend per query type, by the model that answered",
        &names,
        top,
    )?;
    let seg_px = chart.plotting_area().dim_in_pixel().0 / names.len() as u32;
    let pad = seg_px / 5;
    let mut stacked = vec![0.0; names.len()];
    for p in PROFILES {
        if !cost.keys().any(|(_, m)| *m == p.model) {
            continue;
        }
        let color = model_color(p.model);
        let bars: Vec<_> = names
            .iter()
            .enumerate()
            .filter_map(|(i, q)| {
                let c = *cost.get(&(*q, p.model))?;
                let y0 = stacked[i];
                stacked[i] += c;
                let mut r = Rectangle::new(
                    [
                        (SegmentValue::Exact(i), y0),
                        (SegmentValue::Exact(i + 1), y0 + c),
                    ],
                    color.filled(),
                );
                r.set_margin(0, 0, pad, pad);
                Some(r)
            })
            .collect();
        chart
            .draw_series(bars)?
            .label(if p.model == ONPREM_MODEL {
                "llama-3.3-70b (on-prem)"
            } else {
                p.model
            })
            .legend(swatch(color));
    }
    chart.draw_series(
        stacked
            .iter()
            .enumerate()
            .map(|(i, &y)| above_bar(money(y), i, y + top * 0.01, 15)),
    )?;
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
}

/// (b) Actual spend against the baseline per query type.
fn draw_actual_vs_baseline(area: &Area<'_>, qts: &[(String, QtTotals)]) -> Result<(), AnyError> {
    let names: Vec<&str> = qts.iter().map(|(q, _)| q.as_str()).collect();
    let top = qts
        .iter()
        .map(|(_, t)| t.baseline_cost.max(t.cost))
        .fold(0.0, f64::max)
        * 1.18;
    let mut chart = query_type_chart(
        area,
        &format!("(b) Actual spend against the baseline: every answer priced on {BASELINE}"),
        &names,
        top,
    )?;
    let seg = chart.plotting_area().dim_in_pixel().0 / names.len() as u32;
    let (outer, gap) = (seg / 8, seg / 40);
    let half = seg / 2;
    let bar = |i: usize, y: f64, left: bool, color: RGBColor| {
        let mut r = Rectangle::new(
            [
                (SegmentValue::Exact(i), 0.0),
                (SegmentValue::Exact(i + 1), y),
            ],
            color.filled(),
        );
        if left {
            r.set_margin(0, 0, outer, seg - half + gap);
        } else {
            r.set_margin(0, 0, half + gap, outer);
        }
        r
    };
    let baseline_color = RGBColor(190, 190, 190);
    let actual_color = RGBColor(31, 119, 180);
    chart
        .draw_series(
            qts.iter()
                .enumerate()
                .map(|(i, (_, t))| bar(i, t.baseline_cost, true, baseline_color)),
        )?
        .label(format!("baseline: all on {BASELINE}"))
        .legend(swatch(baseline_color));
    chart
        .draw_series(
            qts.iter()
                .enumerate()
                .map(|(i, (_, t))| bar(i, t.cost, false, actual_color)),
        )?
        .label("actual: routed by polyrelay")
        .legend(swatch(actual_color));
    chart.draw_series(qts.iter().enumerate().map(|(i, (_, t))| {
        let saved = pct(t.baseline_cost - t.cost, t.baseline_cost);
        let text = format!(
            "{} → {} ({:+.0} %)",
            money(t.baseline_cost),
            money(t.cost),
            -saved
        );
        above_bar(text, i, t.baseline_cost.max(t.cost) + top * 0.01, 14)
    }))?;
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
}

/// (c) p50/p95/p99 latency per hour through the outage, and the share served by the fallback.
fn draw_latency(area: &Area<'_>, hours: &[HourStats]) -> Result<(), AnyError> {
    let top = hours.iter().map(|h| h.p99).fold(0.0, f64::max) * 1.6;
    // A log scale, so the median's move shows as well as the tail's.
    let fastest = hours
        .iter()
        .map(|h| h.p50)
        .filter(|v| *v > 0.0)
        .fold(f64::MAX, f64::min);
    let bottom = if fastest > 25.0 { 20.0 } else { fastest * 0.6 };
    let mut chart = ChartBuilder::on(&area.margin(10, 10, 20, 20))
        .caption(
            "(c) Latency per hour through the OpenAI outage",
            ("sans-serif", 22),
        )
        .margin(10)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .right_y_label_area_size(80)
        .build_cartesian_2d(0f64..24f64, (bottom..top).log_scale())?
        .set_secondary_coord(0f64..24f64, 0f64..115f64);
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .x_labels(13)
        .x_label_formatter(&|h| format!("{:02}:00", *h as u32))
        // plotters' log axis labels only some decades: ticks at 1, 2, 5 × 10^k are drawn below.
        .y_labels(0)
        .y_label_formatter(&|_| String::new())
        .x_desc("hour of the simulated day")
        .y_desc("latency of the call")
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 16))
        .draw()?;
    let ticks: Vec<f64> = [
        10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1e3, 2e3, 5e3, 1e4, 2e4,
    ]
    .into_iter()
    .filter(|v| (bottom..top).contains(v))
    .collect();
    let grid = BLACK.mix(0.2);
    chart.draw_series(
        ticks
            .iter()
            .map(|&v| PathElement::new(vec![(0.0, v), (24.0, v)], grid)),
    )?;
    let base = area.get_base_pixel();
    for &v in &ticks {
        let (x, y) = chart.backend_coord(&(0.0, v));
        let (x, y) = (x - base.0, y - base.1);
        area.draw(&PathElement::new(vec![(x - 5, y), (x, y)], BLACK))?;
        area.draw(&Text::new(
            format!("{v:.0} ms"),
            (x - 9, y),
            ("sans-serif", 15)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Right, VPos::Center)),
        ))?;
    }
    chart
        .configure_secondary_axes()
        .y_label_formatter(&|v| {
            if *v <= 100.0 {
                format!("{v:.0} %")
            } else {
                String::new()
            }
        })
        .y_desc("served by the fallback (OpenAI-first routes)")
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 16))
        .draw()?;
    let (start, end) = (OUTAGE.start as f64, OUTAGE.end as f64);
    chart.draw_series(std::iter::once(Rectangle::new(
        [(start, bottom), (end, top)],
        RGBColor(214, 39, 40).mix(0.10).filled(),
    )))?;
    chart.draw_series(std::iter::once(Text::new(
        "OpenAI outage: 503 / 500 / no answer",
        ((start + end) / 2.0, top * 0.98),
        ("sans-serif", 15)
            .into_font()
            .color(&RGBColor(160, 30, 30))
            .pos(Pos::new(HPos::Center, VPos::Top)),
    )))?;
    let series = |f: fn(&HourStats) -> f64| -> Vec<(f64, f64)> {
        hours
            .iter()
            .enumerate()
            .map(|(h, s)| (h as f64 + 0.5, f(s)))
            .collect()
    };
    type Line = (&'static str, fn(&HourStats) -> f64, RGBColor, u32);
    let lines: [Line; 3] = [
        ("p50", |s| s.p50, RGBColor(31, 119, 180), 3),
        ("p95", |s| s.p95, RGBColor(255, 127, 14), 3),
        ("p99", |s| s.p99, RGBColor(214, 39, 40), 2),
    ];
    for (name, f, color, width) in lines {
        chart
            .draw_series(LineSeries::new(series(f), color.stroke_width(width)).point_size(3))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(width))
            });
    }
    let fallback = RGBColor(120, 120, 120);
    chart
        .draw_secondary_series(DashedLineSeries::new(
            series(|s| s.fallback_share),
            8,
            5,
            fallback.stroke_width(2),
        ))?
        .label("% served by Anthropic (right axis)")
        .legend(move |(x, y)| {
            plotters::element::DashedPathElement::new(
                [(x, y), (x + 20, y)],
                5,
                3,
                fallback.stroke_width(2),
            )
        });
    draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)
}
