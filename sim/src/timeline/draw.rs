//! The timeline's drawing: the plot's SVG layers and label column, text helpers, and the
//! page around them. Times are simulated nanoseconds; the SVG's x unit is the millisecond.

use super::{
    BANDS_MAX, BUCKETS, COMMIT_TICKS_MAX, FAULT_TICKS_MAX, LEADER_BARS_MAX, NODE_TICKS_MAX, OPS_PER_CLIENT_MAX,
    VALUE_CHARS_MAX,
};
use crate::history::{Op, OpOutput, OpValue};
use crate::scenario::Scenario;
use crate::verdict::Verdict;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Vertical gap between lanes, pixels.
const GAP: u32 = 3;
/// Height of the time axis the script draws above the plot, pixels.
const AXIS: u32 = 20;
/// Width of the label column, pixels.
const LABELS: u32 = 70;

/// How many more elements of one kind may be drawn; the rest are counted.
pub struct Cap {
    name: &'static str,
    left: usize,
}

impl Cap {
    pub fn new(name: &'static str, max: usize) -> Self {
        Cap { name, left: max }
    }
}

/// The plot being drawn: lanes stacked top-down, each element in one of three layers
/// (painted in order: backgrounds and bands, bars, ticks and highlights on top).
pub struct Plot {
    pub end_ns: u64,
    layers: [String; 3],
    labels: String,
    y: u32,
    dropped: BTreeMap<&'static str, usize>,
}

impl Plot {
    pub fn new(end_ns: u64) -> Self {
        Plot { end_ns, layers: Default::default(), labels: String::new(), y: 0, dropped: BTreeMap::new() }
    }

    /// Adds a lane of `height` pixels below the others; returns its top.
    pub fn lane(&mut self, label: &str, height: u32) -> u32 {
        let y = self.y;
        let _ = write!(self.labels, "<text x=\"4\" y=\"{}\">{}</text>", AXIS + y + height / 2 + 4, esc(label));
        self.y += height + GAP;
        y
    }

    /// Whether one more element under `cap` may be drawn (if not, it is counted).
    pub fn allow(&mut self, cap: &mut Cap) -> bool {
        if cap.left == 0 {
            *self.dropped.entry(cap.name).or_default() += 1;
            return false;
        }
        cap.left -= 1;
        true
    }

    /// A rectangle over simulated times `(from, to)` and pixel rows `(top, height)`.
    pub fn rect(&mut self, layer: usize, (from_ns, to_ns): (u64, u64), (y, h): (u32, u32), class: &str, title: &str) {
        let _ = write!(
            self.layers[layer],
            "<rect x=\"{}\" y=\"{y}\" width=\"{}\" height=\"{h}\" class=\"{class}\"><title>{}</title></rect>",
            ms(from_ns),
            ms(to_ns.saturating_sub(from_ns)),
            esc(title)
        );
    }

    pub fn line(&mut self, layer: usize, t_ns: u64, y: u32, h: u32, class: &str, title: &str) {
        let x = ms(t_ns);
        let _ = write!(
            self.layers[layer],
            "<line x1=\"{x}\" x2=\"{x}\" y1=\"{y}\" y2=\"{}\" class=\"{class}\"><title>{}</title></line>",
            y + h,
            esc(title)
        );
    }

    /// A rectangle over every lane (percentages are of the viewBox's height).
    pub fn full_rect(&mut self, layer: usize, from_ns: u64, to_ns: u64, class: &str, title: &str) {
        let _ = write!(
            self.layers[layer],
            "<rect x=\"{}\" y=\"0\" width=\"{}\" height=\"100%\" class=\"{class}\"><title>{}</title></rect>",
            ms(from_ns),
            ms(to_ns.saturating_sub(from_ns)),
            esc(title)
        );
    }

    /// A vertical line over every lane.
    pub fn full_line(&mut self, layer: usize, t_ns: u64, class: &str, title: &str) {
        let x = ms(t_ns);
        let _ = write!(
            self.layers[layer],
            "<line x1=\"{x}\" x2=\"{x}\" y1=\"0\" y2=\"100%\" class=\"{class}\"><title>{}</title></line>",
            esc(title)
        );
    }

    /// The aggregation bucket (one of [`BUCKETS`] over the run) of time `t_ns`.
    pub fn bucket(&self, t_ns: u64) -> u64 {
        (u128::from(t_ns.min(self.end_ns)) * u128::from(BUCKETS) / (u128::from(self.end_ns) + 1)) as u64
    }

    pub fn bucket_span(&self, b: u64) -> (u64, u64) {
        let at = |b: u64| (u128::from(self.end_ns) * u128::from(b) / u128::from(BUCKETS)) as u64;
        (at(b), at(b + 1))
    }
}

/// Milliseconds with microsecond precision, trailing zeros dropped: the SVG's x.
pub fn ms(ns: u64) -> String {
    let s = format!("{}.{:03}", ns / 1_000_000, ns % 1_000_000 / 1_000);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Seconds to the nearest microsecond, as the checkers print them.
pub fn secs(ns: u64) -> String {
    let us = ns.saturating_add(500) / 1_000;
    format!("{}.{:06}s", us / 1_000_000, us % 1_000_000)
}

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `s` cut to at most `max` characters, marked when cut.
pub fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// One operation, for its tooltip: client, kind, key, input, output, call and return.
pub fn describe(o: &Op) -> String {
    let v = |s: &Option<String>| match s {
        Some(s) => format!("{:?}", cut(s, VALUE_CHARS_MAX)),
        None => "nil".into(),
    };
    let input = match &o.value {
        OpValue::None => String::new(),
        OpValue::Value(x) => format!(" {:?}", cut(x, VALUE_CHARS_MAX)),
        OpValue::Cas { expected, new } => format!(" {}→{:?}", v(expected), cut(new, VALUE_CHARS_MAX)),
    };
    let output = match (&o.output, o.unknown) {
        (_, true) | (None, _) => "unknown".to_string(),
        (Some(OpOutput::Value(x)), _) => v(x),
        (Some(OpOutput::Ok(_)), _) => "ok".into(),
        (Some(OpOutput::Cas { swapped, current }), _) => format!("swapped={swapped} current={}", v(current)),
    };
    let ret = if o.unknown { "?".to_string() } else { secs(o.ret) };
    let op = serde_json::to_value(o.op).ok().and_then(|k| k.as_str().map(String::from)).unwrap_or_default();
    format!("{} {op} {}{input} → {output}, {}–{ret}", o.client, o.key, secs(o.call))
}

const CSS: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");

/// The whole page: header, violation banner, controls, legend, the chart, the footer.
pub fn page(s: &Scenario, v: &Verdict, banner: &str, plot: Plot) -> String {
    let failed = v.checks.iter().any(|c| !c.violations.is_empty());
    let height = plot.y.max(1);
    let end = ms(plot.end_ns);
    let st = &v.stats;
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>PhantomDB timeline: {name}, seed {seed}</title><style>{CSS}</style></head><body>\
         <header><h1>{name}, seed {seed}: <span class=\"{verdict_class}\">{verdict}</span></h1>\
         <p>{path} · {sim:.1} simulated s · {ops} operations ({ok} ok, {unknown} unknown) · {elections} elections \
         won · trace-hash {hash}</p><p class=\"repro\">cargo sim run {path} --seed {seed} --timeline FILE</p></header>",
        name = esc(&s.name),
        seed = s.seed,
        verdict_class = if failed { "failed" } else { "passed" },
        verdict = if failed { "FAIL" } else { "PASS" },
        path = esc(&s.path.display().to_string()),
        sim = st.simulated_s,
        ops = st.ops,
        ok = st.ops_ok,
        unknown = st.ops_unknown,
        elections = st.elections_won,
        hash = esc(&v.trace_hash),
    );
    html += banner;
    html += "<nav id=\"controls\">from <input id=\"from\" type=\"number\" step=\"any\" min=\"0\"> s \
             to <input id=\"to\" type=\"number\" step=\"any\" min=\"0\"> s \
             <button id=\"apply\">zoom</button> <button id=\"reset\">whole run</button> \
             <span class=\"hint\">or drag across the chart; double-click for the whole run; hover for details</span></nav>";
    html += "<p id=\"legend\"><i class=\"sw up\"></i>up (follower) <i class=\"sw lead\"></i>leader \
             <i class=\"sw down\"></i>down <i class=\"sw poisoned\"></i>storage failed \
             <i class=\"sw side0\"></i><i class=\"sw side1\"></i>partition sides <i class=\"sw iso\"></i>isolated \
             <i class=\"sw clog\"></i>clogged link <i class=\"sw linkband\"></i>loss/latency \
             <i class=\"sw ok\"></i>ok <i class=\"sw fail\"></i>failed <i class=\"sw unk\"></i>unknown \
             <i class=\"sw onkey\"></i>failing key <i class=\"sw blocked\"></i>unexplained</p>";
    let _ = write!(
        html,
        "<div id=\"chart\"><svg id=\"labels\" width=\"{LABELS}\" height=\"{}\">{}</svg><div id=\"right\">\
         <svg id=\"axis\" height=\"{AXIS}\"></svg>\
         <svg id=\"plot\" height=\"{height}\" viewBox=\"0 0 {end} {height}\" preserveAspectRatio=\"none\" \
         data-end=\"{end}\">{}{}{}<g id=\"grid\"></g><rect id=\"sel\" x=\"0\" y=\"0\" width=\"0\" height=\"100%\"/>\
         </svg></div></div>",
        height + AXIS,
        plot.labels,
        plot.layers[0],
        plot.layers[1],
        plot.layers[2],
    );
    let _ = write!(
        html,
        "<footer><p>Bounds (sim/src/timeline.rs): at most {OPS_PER_CLIENT_MAX} operation bars per client (a busier \
         client in {BUCKETS} stacked bars of outcome counts), {COMMIT_TICKS_MAX} commit ticks per group (else \
         {BUCKETS} bars), {LEADER_BARS_MAX} leader bars, {BANDS_MAX} bands, {FAULT_TICKS_MAX} fault ticks, \
         {NODE_TICKS_MAX} ticks per node.</p>"
    );
    if plot.dropped.is_empty() {
        html += "<p>Everything was drawn.</p>";
    } else {
        let left: Vec<String> = plot.dropped.iter().map(|(name, n)| format!("{n} {name}")).collect();
        let _ = write!(html, "<p class=\"dropped\">Not drawn (over a bound): {}.</p>", esc(&left.join(", ")));
    }
    let _ = writeln!(html, "</footer><script>{SCRIPT}</script></body></html>");
    html
}
