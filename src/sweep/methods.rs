//! One `[[grid.methods]]` entry expanded into its cache policies, one per
//! compression ratio (training-free methods: `cr` or `grid.cr`; DMS: its
//! checkpoints), and the small checks shared by plan validation.

use super::config::{DEFAULT_MIN_TOKENS, MethodSection};
use super::plan::{Checkpoint, DmsCheckpoint, MethodPlan, MethodVariant};
use crate::kv::{Budget, CachePolicy};
use crate::limits::MAX_POSITIONS;

/// Expand one `[[grid.methods]]` entry; errors are `(key, message)`.
pub(crate) fn method_plan(
    section: &MethodSection,
    grid_cr: &[f64],
    dms: &[DmsCheckpoint],
    key: &str,
) -> Result<MethodPlan, (String, String)> {
    let k = |f: &str| format!("{key}.{f}");
    let (name, own_cr) = match section {
        MethodSection::Dense { name, cr }
        | MethodSection::Dms { name, cr, .. }
        | MethodSection::Window { name, cr, .. }
        | MethodSection::Tova { name, cr, .. }
        | MethodSection::H2o { name, cr, .. }
        | MethodSection::Quest { name, cr, .. } => (name, cr),
    };
    if let Some(crs) = own_cr {
        if crs.is_empty() {
            return Err((k("cr"), "must not be empty (omit it to use grid.cr)".into()));
        }
        for (i, &cr) in crs.iter().enumerate() {
            check_cr(cr).map_err(|m| (format!("{key}.cr[{i}]"), m))?;
        }
        distinct(crs).map_err(|m| (k("cr"), m))?;
    }
    let budgeted = |make: &dyn Fn(Budget) -> CachePolicy, min_tokens: Option<usize>| {
        let crs = own_cr.as_deref().unwrap_or(grid_cr);
        if crs.is_empty() {
            return Err((
                "grid.cr".to_string(),
                format!(
                    "{} needs a compression ratio (set grid.cr or {})",
                    section_policy(section),
                    k("cr")
                ),
            ));
        }
        let min_tokens = min_tokens.unwrap_or(DEFAULT_MIN_TOKENS);
        Ok(crs
            .iter()
            .map(|&cr| MethodVariant {
                policy: make(Budget::Ratio { cr, min_tokens }),
                cr: Some(cr),
                checkpoint: Checkpoint::Base,
            })
            .collect::<Vec<_>>())
    };
    let variants = match section {
        MethodSection::Dense { cr, .. } => {
            if cr.is_some() {
                return Err((k("cr"), "dense keeps every entry, so it takes no cr".into()));
            }
            vec![MethodVariant {
                policy: CachePolicy::Dense {},
                cr: None,
                checkpoint: Checkpoint::Base,
            }]
        }
        MethodSection::Dms {
            cr,
            window,
            shifted,
            ..
        } => {
            if window.is_some_and(|w| w == 0 || w as u64 > MAX_POSITIONS) {
                return Err((k("window"), format!("must be in 1..={MAX_POSITIONS}")));
            }
            if dms.is_empty() {
                return Err((
                    key.to_string(),
                    "dms needs at least one [[model.dms]] checkpoint (path and the cr it was trained for)".into(),
                ));
            }
            let picked: Vec<usize> = match cr {
                None => (0..dms.len()).collect(),
                Some(crs) => crs
                    .iter()
                    .enumerate()
                    .map(|(i, &c)| {
                        dms.iter().position(|d| d.cr == c).ok_or_else(|| {
                            (
                                format!("{key}.cr[{i}]"),
                                format!("no [[model.dms]] checkpoint with cr {c}"),
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
            };
            picked
                .into_iter()
                .map(|i| MethodVariant {
                    policy: CachePolicy::Dms {
                        window: *window,
                        shifted: *shifted,
                    },
                    cr: Some(dms[i].cr),
                    checkpoint: Checkpoint::Dms(i),
                })
                .collect()
        }
        MethodSection::Window {
            sink, min_tokens, ..
        } => {
            let sink = *sink;
            budgeted(&|budget| CachePolicy::Window { sink, budget }, *min_tokens)?
        }
        MethodSection::Tova {
            min_tokens,
            granularity,
            ..
        } => {
            let granularity = *granularity;
            budgeted(
                &|budget| CachePolicy::Tova {
                    budget,
                    granularity,
                },
                *min_tokens,
            )?
        }
        MethodSection::H2o {
            recent, min_tokens, ..
        } => {
            let recent = *recent;
            budgeted(&|budget| CachePolicy::H2o { recent, budget }, *min_tokens)?
        }
        MethodSection::Quest {
            page_size,
            min_tokens,
            granularity,
            dense_layers,
            ..
        } => {
            if *page_size == 0 || *page_size as u64 > MAX_POSITIONS {
                return Err((k("page_size"), format!("must be in 1..={MAX_POSITIONS}")));
            }
            let (page_size, granularity, dense_layers) = (*page_size, *granularity, *dense_layers);
            budgeted(
                &|budget| CachePolicy::Quest {
                    page_size,
                    budget,
                    granularity,
                    dense_layers,
                },
                *min_tokens,
            )?
        }
    };
    Ok(MethodPlan {
        name: name
            .clone()
            .unwrap_or_else(|| section_policy(section).to_string()),
        variants,
    })
}

fn section_policy(section: &MethodSection) -> &'static str {
    match section {
        MethodSection::Dense { .. } => "dense",
        MethodSection::Dms { .. } => "dms",
        MethodSection::Window { .. } => "window",
        MethodSection::Tova { .. } => "tova",
        MethodSection::H2o { .. } => "h2o",
        MethodSection::Quest { .. } => "quest",
    }
}

pub(crate) fn check_cr(cr: f64) -> Result<(), String> {
    if cr.is_finite() && cr >= 1.0 {
        Ok(())
    } else {
        Err(format!(
            "compression ratio {cr} must be a finite number >= 1"
        ))
    }
}

pub(crate) fn distinct<T: PartialEq + std::fmt::Debug>(xs: &[T]) -> Result<(), String> {
    match xs.iter().enumerate().find(|(i, x)| xs[..*i].contains(x)) {
        Some((_, x)) => Err(format!("{x:?} is listed twice")),
        None => Ok(()),
    }
}

/// Sorted, positive, distinct; errors are `(index suffix, message)`.
pub(crate) fn positive_list(xs: &[usize], what: &str) -> Result<Vec<usize>, (String, String)> {
    if xs.is_empty() {
        return Err((String::new(), format!("at least one {what} is needed")));
    }
    for (i, &x) in xs.iter().enumerate() {
        if x == 0 {
            return Err((format!("[{i}]"), format!("{what} must be at least 1")));
        }
    }
    distinct(xs).map_err(|m| (String::new(), m))?;
    let mut v = xs.to_vec();
    v.sort_unstable();
    Ok(v)
}
