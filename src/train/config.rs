//! Hyperparameters of a retrofitting run (`docs/method.md` §4), each with its
//! documented default, and the compression-ratio schedule.

use serde::{Deserialize, Serialize};

use super::TrainError;

/// What is trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    /// `dms_proj_alpha_norm` + `dms_proj_alpha` per layer, zero-initialised
    /// projection so the first logit is −offset (MO's default, `docs/method.md` §2.2).
    Adapter,
    /// The borrowed query channel (`docs/method.md` §2.1): a trainable delta on the
    /// q_proj rows `(h·G)·d + d − 1`, zero-initialised (the base's own
    /// channel is the first decision).
    Neuron,
}

impl std::str::FromStr for Variant {
    type Err = TrainError;
    fn from_str(s: &str) -> Result<Self, TrainError> {
        match s {
            "adapter" => Ok(Self::Adapter),
            "neuron" => Ok(Self::Neuron),
            other => Err(TrainError::Setting {
                field: "variant",
                reason: format!("`{other}` is neither `adapter` nor `neuron`"),
            }),
        }
    }
}

/// DMS hyperparameters of the student.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DmsTrainConfig {
    pub variant: Variant,
    /// Sliding window w: a marked key stays visible to w further queries.
    /// Default 512 (the released checkpoint); small models with short
    /// generations use 16–64.
    pub window: usize,
    /// Logit scale; default 100.
    pub alpha_scale: f64,
    /// Logit offset (the first logit is −offset); default 5.
    pub alpha_offset: f64,
    /// Relaxation temperature τ; default 0.1.
    pub tau: f64,
}

impl Default for DmsTrainConfig {
    fn default() -> Self {
        Self {
            variant: Variant::Adapter,
            window: 512,
            alpha_scale: 100.0,
            alpha_offset: 5.0,
            tau: 0.1,
        }
    }
}

/// Optimiser and schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub dms: DmsTrainConfig,
    /// The final compression ratio; default 8.
    pub target_cr: f64,
    /// Steps per unit of CR on the linear ramp; default 100 (the paper).
    pub steps_per_cr: usize,
    /// Steps after the ramp reaches `target_cr`; default 0.
    pub hold_steps: usize,
    /// Tokens per training sequence; default [`DEFAULT_SEQ_LEN`] (8192, 16
    /// windows of 512: the reference's debug shape; its 8B recipe packs
    /// 32768). Must exceed the window: only a query more than `window`
    /// tokens behind a key can lose it, so shorter sequences give the
    /// eviction term no signal.
    pub seq_len: usize,
    /// Sequences per update (gradients accumulated, loss averaged);
    /// default 1.
    #[serde(default = "one")]
    pub batch: usize,
    /// AdamW learning rate; default 3e-5 (MO).
    pub lr: f64,
    /// AdamW β₂; default 0.95 (MO).
    pub beta2: f32,
    /// Gradient clipping by the global L2 norm over every trained tensor
    /// (HF Trainer's `max_grad_norm`, as the reference trains); default
    /// 1.0.
    pub grad_clip: f32,
    /// Seed of the relaxation noise and data order; default 0.
    pub seed: u64,
    /// Save a checkpoint every this many steps (0: only at integer CRs and
    /// the end); default 0.
    pub save_every: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            dms: DmsTrainConfig::default(),
            target_cr: 8.0,
            steps_per_cr: 100,
            hold_steps: 0,
            seq_len: DEFAULT_SEQ_LEN,
            batch: 1,
            lr: 3e-5,
            beta2: 0.95,
            grad_clip: 1.0,
            seed: 0,
            save_every: 0,
        }
    }
}

impl TrainConfig {
    /// Checks ranges once, before any weight is loaded.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |field, reason: &str| {
            Err(TrainError::Setting {
                field,
                reason: reason.to_string(),
            })
        };
        if self.target_cr.is_nan() || self.target_cr < 1.0 {
            return bad("target-cr", "must be at least 1");
        }
        if self.steps_per_cr == 0 {
            return bad("steps-per-cr", "must be at least 1");
        }
        if self.batch == 0 {
            return bad("batch", "must be at least 1");
        }
        if self.seq_len < 2 {
            return bad("seq-len", "must be at least 2");
        }
        if self.dms.window == 0 {
            return bad("window", "must be at least 1");
        }
        if self.seq_len <= self.dms.window {
            return Err(TrainError::Setting {
                field: "seq-len",
                reason: format!(
                    "--seq-len {} must be longer than --window {}: no query is more than \
                     the window behind a key, so nothing can be evicted and the eviction \
                     term gets no signal",
                    self.seq_len, self.dms.window
                ),
            });
        }
        if !(self.grad_clip.is_finite() && self.grad_clip > 0.0) {
            return bad("grad-clip", "must be a positive number");
        }
        if self.dms.tau.is_nan() || self.dms.tau <= 0.0 {
            return bad("tau", "must be positive");
        }
        if self.lr.is_nan() || self.lr <= 0.0 {
            return bad("lr", "must be positive");
        }
        Ok(())
    }

    /// Ramp steps plus hold steps.
    pub fn total_steps(&self) -> usize {
        ramp_steps(self.target_cr, self.steps_per_cr) + self.hold_steps
    }

    /// The compression ratio the loss aims at after `step` updates:
    /// `1 + step / steps_per_cr`, capped at `target_cr`.
    pub fn cr_at(&self, step: usize) -> f64 {
        (1.0 + step as f64 / self.steps_per_cr as f64).min(self.target_cr)
    }

    /// The evicted fraction the loss aims at: `1 − 1/cr_at(step)`.
    pub fn target_fraction(&self, step: usize) -> f64 {
        1.0 - 1.0 / self.cr_at(step)
    }
}

/// Default tokens per training sequence: 16 windows of the default 512.
pub const DEFAULT_SEQ_LEN: usize = 8192;

fn one() -> usize {
    1
}

/// Steps for the ramp from CR 1 to `target_cr`.
pub fn ramp_steps(target_cr: f64, steps_per_cr: usize) -> usize {
    ((target_cr - 1.0) * steps_per_cr as f64).ceil() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cr_rises_linearly_then_holds() {
        let c = TrainConfig {
            target_cr: 4.0,
            steps_per_cr: 10,
            hold_steps: 5,
            ..TrainConfig::default()
        };
        assert_eq!(c.cr_at(0), 1.0);
        assert_eq!(c.cr_at(5), 1.5);
        assert_eq!(c.cr_at(30), 4.0);
        assert_eq!(c.cr_at(100), 4.0);
        assert_eq!(c.total_steps(), 35);
        assert!((c.target_fraction(10) - 0.5).abs() < 1e-12);
        assert_eq!(c.target_fraction(0), 0.0);
    }

    #[test]
    fn rejects_bad_settings() {
        let c = TrainConfig {
            target_cr: 0.5,
            ..TrainConfig::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("target-cr"));
        assert!(TrainConfig::default().validate().is_ok());
        assert!("foo".parse::<Variant>().is_err());
        assert_eq!("neuron".parse::<Variant>().unwrap(), Variant::Neuron);
    }

    /// Regression (`train-dms` defaults `--window 512 --seq-len 512` gave the
    /// eviction term no signal): a sequence no longer than the window is
    /// refused in one line naming both, and the defaults are the
    /// reference's shape, the window a small fraction of the sequence.
    #[test]
    fn seq_len_within_the_window_is_refused() {
        let d = TrainConfig::default();
        assert_eq!((d.dms.window, d.seq_len), (512, 8192));
        assert!(d.seq_len >= 4 * d.dms.window);
        for seq_len in [512, 100] {
            let c = TrainConfig {
                seq_len,
                ..TrainConfig::default()
            };
            let e = c.validate().unwrap_err().to_string();
            assert!(
                e.contains(&format!("--seq-len {seq_len}")) && e.contains("--window 512"),
                "{e}"
            );
            assert!(!e.contains('\n'), "{e}");
        }
        let ok = TrainConfig {
            seq_len: 513,
            ..TrainConfig::default()
        };
        assert!(ok.validate().is_ok());
    }
}
