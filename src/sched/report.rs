//! What chapter 12 prints: the nodes, where each pod went, and how full each node is.
//!
//! Each table is a plain string, so that tests snapshot it and the book shows the
//! snapshot.

use std::fmt::Write;

use super::cluster::{Cluster, Placement};
use super::model::{Amounts, Node, Pod, TaintEffect, memory_text};

/// Rows as columns padded to their widest cell, two spaces apart.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<String>| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<width$}  ");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row.clone());
    }
    out
}

/// `500m` CPU as kube writes it.
fn cpu_text(milli: u64) -> String {
    if milli.is_multiple_of(1000) {
        (milli / 1000).to_string()
    } else {
        format!("{milli}m")
    }
}

/// A pod's or node's amounts as two cells.
fn cells(amounts: Amounts) -> [String; 2] {
    [cpu_text(amounts.cpu_milli), memory_text(amounts.memory)]
}

/// `key=value` pairs, comma-separated; `-` for none.
fn pairs<'a>(pairs: impl Iterator<Item = String> + 'a) -> String {
    let text: Vec<String> = pairs.collect();
    if text.is_empty() {
        "-".to_string()
    } else {
        text.join(",")
    }
}

/// The nodes: capacity, labels, taints, cordon.
pub fn nodes_table(nodes: &[Node]) -> String {
    let rows: Vec<Vec<String>> = nodes
        .iter()
        .map(|node| {
            let [cpu, memory] = cells(node.allocatable);
            let effect = |e: TaintEffect| format!("{e:?}");
            vec![
                node.name.clone(),
                cpu,
                memory,
                pairs(node.labels.iter().map(|(k, v)| format!("{k}={v}"))),
                pairs(
                    node.taints
                        .iter()
                        .map(|t| format!("{}={}:{}", t.key, t.value, effect(t.effect))),
                ),
                if node.unschedulable { "cordoned" } else { "-" }.to_string(),
            ]
        })
        .collect();
    table(
        &["NODE", "CPU", "MEMORY", "LABELS", "TAINTS", "STATUS"],
        &rows,
    )
}

/// Where each pod went: its requests and limits and its node, or `pending`; then the
/// reason of each pending pod, in kube's words.
pub fn placement_table(pods: &[Pod], cluster: &Cluster, placement: &Placement) -> String {
    let rows: Vec<Vec<String>> = pods
        .iter()
        .zip(&placement.nodes)
        .map(|(pod, node)| {
            let [cpu, memory] = cells(pod.requests);
            let limits = pod.limits.map_or("-".to_string(), |l| {
                let [cpu, memory] = cells(l);
                format!("{cpu}/{memory}")
            });
            let node = node.map_or("pending".to_string(), |n| {
                cluster.nodes()[n].node.name.clone()
            });
            vec![pod.name.clone(), cpu, memory, limits, node]
        })
        .collect();
    let mut out = table(&["POD", "CPU", "MEMORY", "LIMITS", "NODE"], &rows);
    for (index, error) in &placement.pending {
        let _ = writeln!(out, "pod {} is pending: {error}", pods[*index].name);
    }
    out
}

/// How full each node is: its pods, and its requested amounts against its allocatable.
pub fn allocation_table(cluster: &Cluster) -> String {
    let percent = |used: u64, of: u64| (used * 100).checked_div(of).unwrap_or(0);
    let rows: Vec<Vec<String>> = cluster
        .nodes()
        .iter()
        .map(|info| {
            let (used, of) = (info.requested, info.node.allocatable);
            vec![
                info.node.name.clone(),
                info.pods.to_string(),
                format!(
                    "{} of {} ({}%)",
                    cpu_text(used.cpu_milli),
                    cpu_text(of.cpu_milli),
                    percent(used.cpu_milli, of.cpu_milli)
                ),
                format!(
                    "{} of {} ({}%)",
                    memory_text(used.memory),
                    memory_text(of.memory),
                    percent(used.memory, of.memory)
                ),
            ]
        })
        .collect();
    table(
        &["NODE", "PODS", "CPU REQUESTED", "MEMORY REQUESTED"],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_padded_to_their_widest_cell() {
        let text = table(
            &["A", "B"],
            &[
                vec!["long".into(), "x".into()],
                vec!["s".into(), "y".into()],
            ],
        );
        assert_eq!(text, "A     B\nlong  x\ns     y\n");
    }

    #[test]
    fn whole_cpus_are_written_without_millis() {
        assert_eq!(cpu_text(2000), "2");
        assert_eq!(cpu_text(250), "250m");
    }
}
