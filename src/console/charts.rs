//! The overview's charts, drawn on the server as SVG by plotters: readable without JavaScript,
//! and nothing in them comes from users (statuses, error codes and numbers only).

use crate::service::console::ChartData;
use crate::store::console::{HOUR, LATENCY_BUCKETS};
use plotters::prelude::*;
use std::collections::BTreeMap;

const SIZE: (u32, u32) = (640, 260);
type Drawn = Result<(), Box<dyn std::error::Error>>;

/// The final statuses drawn, with their colours; everything else counts as "in progress".
const STATUSES: &[(&str, RGBColor)] = &[
    ("delivered", RGBColor(46, 139, 87)),
    ("undelivered", RGBColor(230, 145, 56)),
    ("failed", RGBColor(204, 51, 51)),
    ("received", RGBColor(70, 110, 200)),
];
const IN_PROGRESS: RGBColor = RGBColor(150, 150, 150);
const PALETTE: &[RGBColor] = &[
    RGBColor(204, 51, 51),
    RGBColor(230, 145, 56),
    RGBColor(128, 80, 170),
    RGBColor(40, 150, 160),
    RGBColor(120, 120, 60),
];

fn render(draw: impl FnOnce(&mut String) -> Drawn) -> String {
    let mut svg = String::new();
    match draw(&mut svg) {
        Ok(()) => svg,
        Err(err) => {
            tracing::warn!(%err, "drawing a console chart failed");
            String::from("<p>This chart could not be drawn.</p>")
        }
    }
}

fn hour_label(since: i64, index: i64) -> String {
    let micros = since + index * HOUR;
    let hour = micros.rem_euclid(24 * HOUR) / HOUR;
    format!("{hour:02}:00")
}

fn buckets(data: &ChartData) -> i64 {
    ((data.until - data.since) / HOUR + 1).max(1)
}

/// Lines of messages per hour, one per final status (and one for those still in progress).
pub fn messages_per_hour(data: &ChartData) -> String {
    let hours = buckets(data);
    let mut series: Vec<(&str, RGBColor, Vec<i64>)> = STATUSES
        .iter()
        .map(|(name, colour)| (*name, *colour, vec![0; hours as usize]))
        .collect();
    series.push(("in progress", IN_PROGRESS, vec![0; hours as usize]));
    for (at, status, count) in &data.hourly_by_status {
        let index = (at - data.since) / HOUR;
        if !(0..hours).contains(&index) {
            continue;
        }
        let line = series
            .iter()
            .position(|(name, _, _)| name == status)
            .unwrap_or(series.len() - 1);
        series[line].2[index as usize] += count;
    }
    lines(
        "Messages per hour by final status (UTC)",
        "messages",
        data.since,
        hours,
        series,
    )
}

/// Lines of failed messages per hour, one per error code (the five most frequent).
pub fn errors_per_hour(data: &ChartData) -> String {
    let hours = buckets(data);
    let mut totals: BTreeMap<i64, i64> = BTreeMap::new();
    for (_, code, count) in &data.hourly_by_error {
        *totals.entry(*code).or_default() += count;
    }
    let mut codes: Vec<(i64, i64)> = totals.into_iter().collect();
    codes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    codes.truncate(PALETTE.len());
    let names: Vec<String> = codes.iter().map(|(code, _)| code.to_string()).collect();
    let mut series: Vec<(&str, RGBColor, Vec<i64>)> = names
        .iter()
        .zip(PALETTE)
        .map(|(name, colour)| (name.as_str(), *colour, vec![0; hours as usize]))
        .collect();
    for (at, code, count) in &data.hourly_by_error {
        let index = (at - data.since) / HOUR;
        let Some(line) = codes.iter().position(|(c, _)| c == code) else {
            continue;
        };
        if (0..hours).contains(&index) {
            series[line].2[index as usize] += count;
        }
    }
    lines(
        "Errors per hour by error code (UTC)",
        "messages",
        data.since,
        hours,
        series,
    )
}

fn lines(
    caption: &str,
    unit: &str,
    since: i64,
    hours: i64,
    series: Vec<(&str, RGBColor, Vec<i64>)>,
) -> String {
    render(|svg| {
        let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let top = series
            .iter()
            .flat_map(|(_, _, values)| values.iter().copied())
            .max()
            .unwrap_or(0)
            .max(4);
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(28)
            .y_label_area_size(48)
            .build_cartesian_2d(0i64..(hours - 1).max(1), 0i64..(top + top / 8 + 1))?;
        chart
            .configure_mesh()
            .x_labels(12)
            .y_labels(6)
            .x_label_formatter(&|index| hour_label(since, *index))
            .y_desc(unit)
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 14))
            .light_line_style(RGBColor(240, 240, 240))
            .draw()?;
        let labelled = !series.is_empty();
        if series.is_empty() {
            chart.draw_series(std::iter::once(Text::new(
                "No errors in this period",
                ((hours - 1) / 3, top / 2),
                ("sans-serif", 18),
            )))?;
        }
        for (name, colour, values) in series {
            chart
                .draw_series(LineSeries::new(
                    values.iter().enumerate().map(|(i, v)| (i as i64, *v)),
                    colour.stroke_width(2),
                ))?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour));
        }
        if labelled {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .label_font(("sans-serif", 14))
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(200, 200, 200))
                .draw()?;
        }
        root.present()?;
        Ok(())
    })
}

/// The `p`th percentile (0–100), in microseconds, of a latency histogram (bucket index,
/// count): the nearest rank, placed linearly within its bucket. The open last bucket answers
/// its lower bound.
pub fn percentile(histogram: &[(i64, i64)], p: u32) -> Option<i64> {
    let mut buckets: Vec<(i64, i64)> = histogram.iter().filter(|(_, n)| *n > 0).copied().collect();
    buckets.sort_unstable();
    let total: i64 = buckets.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return None;
    }
    let rank = ((i64::from(p) * total + 99) / 100).max(1);
    let mut before = 0;
    for (bucket, n) in buckets {
        if before + n >= rank {
            let index = usize::try_from(bucket).unwrap_or(0);
            let low = index
                .checked_sub(1)
                .and_then(|i| LATENCY_BUCKETS.get(i))
                .copied()
                .unwrap_or(0);
            let Some(high) = LATENCY_BUCKETS.get(index).copied() else {
                return Some(low);
            };
            let within = (rank - before) as f64 / n as f64;
            return Some(low + ((high - low) as f64 * within) as i64);
        }
        before += n;
    }
    None
}

/// Bars of the accepted → delivered latency percentiles, in seconds.
pub fn latency_percentiles(data: &ChartData) -> String {
    let delivered: i64 = data.latency_histogram.iter().map(|(_, n)| n).sum();
    let points: Vec<(&str, f64)> = [("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99)]
        .into_iter()
        .filter_map(|(name, p)| Some((name, percentile(&data.latency_histogram, p)? as f64 / 1e6)))
        .collect();
    render(|svg| {
        let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let top = points.iter().map(|(_, s)| *s).fold(1.0f64, f64::max);
        let caption =
            format!("Delivery latency, accepted → delivered ({delivered} delivered messages)");
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(28)
            .y_label_area_size(48)
            .build_cartesian_2d((0u32..3u32).into_segmented(), 0f64..top * 1.2)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_label_formatter(&|segment| match segment {
                SegmentValue::CenterOf(i) => ["p50", "p90", "p95", "p99"]
                    .get(*i as usize)
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
                _ => String::new(),
            })
            .y_desc("seconds")
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 14))
            .light_line_style(RGBColor(240, 240, 240))
            .draw()?;
        if points.is_empty() {
            chart.draw_series(std::iter::once(Text::new(
                "No delivered messages in this period",
                (SegmentValue::Exact(0), top / 2.0),
                ("sans-serif", 18),
            )))?;
        }
        let colour = RGBColor(46, 139, 87);
        chart.draw_series(
            Histogram::vertical(&chart)
                .style(colour.mix(0.75).filled())
                .margin(24)
                .data(
                    points
                        .iter()
                        .enumerate()
                        .map(|(i, (_, seconds))| (i as u32, *seconds)),
                ),
        )?;
        chart.draw_series(points.iter().enumerate().map(|(i, (_, seconds))| {
            Text::new(
                format!("{seconds:.2} s"),
                (SegmentValue::CenterOf(i as u32), *seconds + top * 0.06),
                ("sans-serif", 15),
            )
        }))?;
        root.present()?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_histogram_buckets() {
        // 100 messages: 50 under 100 ms (bucket 0), 40 in 1–2 s (bucket 4), 10 past an hour.
        let histogram = [(4, 40), (0, 50), (14, 10)];
        assert_eq!(percentile(&histogram, 50), Some(100_000));
        assert_eq!(percentile(&histogram, 70), Some(1_500_000));
        assert_eq!(percentile(&histogram, 90), Some(2_000_000));
        assert_eq!(percentile(&histogram, 99), Some(3_600_000_000));
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[(3, 0)], 50), None);
    }

    #[test]
    fn a_chart_is_an_svg_with_its_series() {
        let data = ChartData {
            since: 0,
            until: 3 * HOUR,
            hourly_by_status: vec![(HOUR, "delivered".into(), 5), (HOUR, "failed".into(), 1)],
            hourly_by_error: vec![(HOUR, 30003, 1)],
            latency_histogram: vec![(3, 2)],
        };
        let svg = messages_per_hour(&data);
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("delivered"));
        assert!(errors_per_hour(&data).contains("30003"));
        assert!(latency_percentiles(&data).contains("p95"));
    }
}
