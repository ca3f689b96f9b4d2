//! Inline SVG charts for the report, drawn by hand: a handful of primitives (bars, a line with a
//! band, a dot timeline) need no plotting crate, and the output is the same bytes for the same
//! data (the report is reproducible and its tests can compare it).

use std::fmt::Write;

use super::html::escape;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 250.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 56.0;

/// Colours of the series (colour-blind safe, Okabe-Ito).
pub const COLOURS: [&str; 5] = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#999999"];
const HIGHLIGHT: &str = "#D55E00";

fn open(title: &str, height: f64) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="plot" role="img" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}"><title>{t}</title><text x="{LEFT}" y="16" class="plot-title">{t}</text>"#,
        t = escape(title)
    );
    s
}

/// Round numbers for an axis from 0 to at least `max`.
fn axis_max(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|v| *v >= max)
        .unwrap_or(10.0 * magnitude)
}

fn y_axis(s: &mut String, top: f64, plot_h: f64, max: f64, label: &str) {
    for i in 0..=4 {
        let v = max * f64::from(i) / 4.0;
        let y = top + plot_h - plot_h * f64::from(i) / 4.0;
        let _ = write!(
            s,
            r#"<line x1="{LEFT}" x2="{x2:.1}" y1="{y:.1}" y2="{y:.1}" class="grid"/><text x="{tx:.1}" y="{ty:.1}" class="tick" text-anchor="end">{v}</text>"#,
            x2 = WIDTH - RIGHT,
            tx = LEFT - 4.0,
            ty = y + 4.0,
            v = short_number(v)
        );
    }
    let _ = write!(
        s,
        r#"<text x="12" y="{y:.1}" class="tick" transform="rotate(-90 12 {y:.1})" text-anchor="middle">{l}</text>"#,
        y = top + plot_h / 2.0,
        l = escape(label)
    );
}

fn short_number(v: f64) -> String {
    if v >= 1_000_000.0 {
        format!("{:.1}M", v / 1_000_000.0)
    } else if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v.fract().abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Grouped bars: one group per label, one bar per series; `highlight` marks one group.
pub fn bars(
    title: &str,
    y_label: &str,
    labels: &[String],
    series: &[(&str, Vec<f64>)],
    highlight: Option<usize>,
) -> String {
    let mut s = open(title, HEIGHT);
    let plot_h = HEIGHT - TOP - BOTTOM;
    let plot_w = WIDTH - LEFT - RIGHT;
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(0.0, f64::max);
    let max = axis_max(max);
    y_axis(&mut s, TOP, plot_h, max, y_label);
    let groups = labels.len().max(1) as f64;
    let group_w = plot_w / groups;
    let bar_w = (group_w * 0.8 / series.len().max(1) as f64).max(1.0);
    let label_every = (labels.len() / 24).max(1);
    for (g, label) in labels.iter().enumerate() {
        let x0 = LEFT + group_w * g as f64 + group_w * 0.1;
        if highlight == Some(g) {
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{TOP}" width="{group_w:.1}" height="{plot_h:.1}" class="highlight"/>"#,
                x = LEFT + group_w * g as f64
            );
        }
        for (k, (name, values)) in series.iter().enumerate() {
            let v = values.get(g).copied().unwrap_or(0.0);
            let h = plot_h * v / max;
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{bar_w:.1}" height="{h:.1}" fill="{c}"><title>{n} {l}: {v}</title></rect>"#,
                x = x0 + bar_w * k as f64,
                y = TOP + plot_h - h,
                c = COLOURS[k % COLOURS.len()],
                n = escape(name),
                l = escape(label),
                v = short_number(v)
            );
        }
        if g % label_every == 0 {
            let _ = write!(
                s,
                r#"<text x="{x:.1}" y="{y:.1}" class="tick" text-anchor="end" transform="rotate(-40 {x:.1} {y:.1})">{l}</text>"#,
                x = LEFT + group_w * (g as f64 + 0.5),
                y = HEIGHT - BOTTOM + 14.0,
                l = escape(label)
            );
        }
    }
    if series.len() > 1 {
        legend(&mut s, series.iter().map(|(n, _)| *n));
    }
    s.push_str("</svg>");
    s
}

fn legend<'a>(s: &mut String, names: impl Iterator<Item = &'a str>) {
    // A row of its own under the title, so a long title never runs into it.
    let mut x = LEFT;
    for (k, name) in names.enumerate() {
        let _ = write!(
            s,
            r#"<rect x="{x:.1}" y="21" width="10" height="10" fill="{c}"/><text x="{tx:.1}" y="30" class="tick">{n}</text>"#,
            c = COLOURS[k % COLOURS.len()],
            tx = x + 14.0,
            n = escape(name)
        );
        x += 24.0 + 6.0 * name.chars().count() as f64;
    }
}

/// A series as a line over an expectation band (`band[i]` = low, high), with the points in
/// `highlight` (a range of indices) marked: observed volume against the seasonal baseline.
pub fn line_band(
    title: &str,
    y_label: &str,
    labels: &[String],
    values: &[f64],
    band: &[(f64, f64)],
    highlight: (usize, usize),
) -> String {
    let mut s = open(title, HEIGHT);
    let plot_h = HEIGHT - TOP - BOTTOM;
    let plot_w = WIDTH - LEFT - RIGHT;
    let max = values
        .iter()
        .copied()
        .chain(band.iter().map(|b| b.1))
        .fold(0.0, f64::max);
    let max = axis_max(max);
    y_axis(&mut s, TOP, plot_h, max, y_label);
    let n = values.len().max(2) as f64 - 1.0;
    let x = |i: usize| LEFT + plot_w * i as f64 / n;
    let y = |v: f64| TOP + plot_h - plot_h * v.clamp(0.0, max) / max;
    let (from, to) = highlight;
    if from < values.len() {
        let _ = write!(
            s,
            r#"<rect x="{x0:.1}" y="{TOP}" width="{w:.1}" height="{plot_h:.1}" class="highlight"/>"#,
            x0 = x(from),
            w = (x(to.min(values.len().saturating_sub(1))) - x(from)).max(2.0)
        );
    }
    if band.len() == values.len() && !band.is_empty() {
        let upper = band
            .iter()
            .enumerate()
            .map(|(i, b)| format!("{:.1},{:.1}", x(i), y(b.1)));
        let lower = band
            .iter()
            .enumerate()
            .rev()
            .map(|(i, b)| format!("{:.1},{:.1}", x(i), y(b.0)));
        let points: Vec<String> = upper.chain(lower).collect();
        let _ = write!(
            s,
            r#"<polygon points="{}" class="band"><title>expected (baseline mean ± 2σ)</title></polygon>"#,
            points.join(" ")
        );
    }
    let line: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
        .collect();
    let _ = write!(
        s,
        r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="1.5"/>"#,
        line.join(" "),
        COLOURS[0]
    );
    for (i, v) in values
        .iter()
        .enumerate()
        .take(to.saturating_add(1))
        .skip(from)
    {
        let _ = write!(
            s,
            r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{HIGHLIGHT}"><title>{}: {}</title></circle>"#,
            x(i),
            y(*v),
            escape(labels.get(i).map_or("", String::as_str)),
            short_number(*v)
        );
    }
    let every = (labels.len() / 8).max(1);
    for (i, label) in labels.iter().enumerate().step_by(every) {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" class="tick" text-anchor="middle">{}</text>"#,
            x(i),
            HEIGHT - BOTTOM + 16.0,
            escape(label)
        );
    }
    s.push_str("</svg>");
    s
}

/// One row per name, one column per label, a dot where `marks` has a count: which scopes were
/// granted on which days. `highlight` marks a range of columns.
pub fn timeline(
    title: &str,
    rows: &[String],
    labels: &[String],
    marks: &[(usize, usize, u64)],
    highlight: (usize, usize),
) -> String {
    let row_h = 18.0;
    let left = 250.0;
    let height = TOP + row_h * rows.len().max(1) as f64 + BOTTOM;
    let mut s = open(title, height);
    let plot_w = WIDTH - left - RIGHT;
    let col_w = plot_w / labels.len().max(1) as f64;
    let (from, to) = highlight;
    if from < labels.len() {
        let _ = write!(
            s,
            r#"<rect x="{:.1}" y="{TOP}" width="{:.1}" height="{:.1}" class="highlight"/>"#,
            left + col_w * from as f64,
            col_w * (to.min(labels.len() - 1) + 1 - from) as f64,
            row_h * rows.len() as f64
        );
    }
    for (r, name) in rows.iter().enumerate() {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" class="tick" text-anchor="end">{}</text>"#,
            left - 6.0,
            TOP + row_h * r as f64 + 13.0,
            escape(&super::html::redact_ids(name))
        );
    }
    let max = marks.iter().map(|m| m.2).max().unwrap_or(1).max(1) as f64;
    for (r, c, n) in marks {
        let radius = 2.0 + 5.0 * (*n as f64 / max).sqrt();
        let _ = write!(
            s,
            r#"<circle cx="{:.1}" cy="{:.1}" r="{radius:.1}" fill="{}"><title>{} on {}: {n} grant(s)</title></circle>"#,
            left + col_w * (*c as f64 + 0.5),
            TOP + row_h * (*r as f64 + 0.5),
            COLOURS[0],
            escape(&super::html::redact_ids(
                rows.get(*r).map_or("", String::as_str)
            )),
            escape(labels.get(*c).map_or("", String::as_str))
        );
    }
    let every = (labels.len() / 8).max(1);
    for (i, label) in labels.iter().enumerate().step_by(every) {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" class="tick" text-anchor="middle">{}</text>"#,
            left + col_w * (i as f64 + 0.5),
            height - BOTTOM + 16.0,
            escape(label)
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_round_up_to_readable_numbers() {
        assert_eq!(axis_max(0.0), 1.0);
        assert_eq!(axis_max(7.0), 10.0);
        assert_eq!(axis_max(12.0), 20.0);
        assert_eq!(axis_max(4_100.0), 5_000.0);
    }

    #[test]
    fn charts_escape_their_text_and_are_reproducible() {
        let labels = vec!["<a>".to_string(), "b&c".to_string()];
        let a = bars("t<", "n", &labels, &[("x", vec![1.0, 2.0])], Some(1));
        assert_eq!(
            a,
            bars("t<", "n", &labels, &[("x", vec![1.0, 2.0])], Some(1))
        );
        assert!(a.contains("&lt;a&gt;") && a.contains("b&amp;c") && !a.contains("<a>"));
        let l = line_band(
            "t",
            "n",
            &labels,
            &[1.0, 5.0],
            &[(0.0, 2.0), (0.0, 2.0)],
            (1, 1),
        );
        assert!(l.contains("<polygon") && l.contains("<circle"));
        let t = timeline("t", &labels, &labels, &[(0, 1, 3)], (1, 1));
        assert!(t.contains("<circle") && t.contains("3 grant(s)"));
    }
}
