//! The training forward of the decoder in plain burn tensor ops: the frozen
//! base with the DMS decisions of [`DecisionParams`], over one whole
//! sequence, in three modes (teacher, relaxed student, hard decisions).

use burn::prelude::*;
use burn::tensor::activation::log_sigmoid;

use super::attention::{MASK_VALUE, attend, masks, shift_to_keys};
use super::config::{DmsTrainConfig, Variant};
use super::{DecisionParams, FrozenModel};
use crate::model::layers::norm::RmsNorm;

/// How attention treats keys outside the window.
#[derive(Debug, Clone)]
pub enum Mode<B: Backend> {
    /// Dense causal attention, no decisions: the teacher (`docs/method.md` §4.2).
    /// The neuron variant's borrowed channel is still zeroed, as in the
    /// inference model, and the trainable delta is not applied.
    Teacher,
    /// The relaxation: `z = (logit + noise)/τ`, term `log σ(−z) = log(1−p)`.
    Relaxed {
        /// Per layer `[t, kv_heads]` logistic noise.
        noise: Vec<Tensor<B, 2>>,
        tau: f64,
    },
    /// Inference decisions `logit > 0`, evicted keys masked out exactly.
    Hard,
}

/// What one forward pass returns.
#[derive(Debug, Clone)]
pub struct Output<B: Backend> {
    /// `[t, vocab]`, row i predicting token i + 1.
    pub logits: Tensor<B, 2>,
    /// Per layer `[t, kv_heads]`: `z` (relaxed) or the logit (hard), per
    /// token (not yet shifted). Empty for the teacher.
    pub z: Vec<Tensor<B, 2>>,
}

/// Runs `tokens` (positions 0..t) through the student or the teacher.
///
/// # Shapes
/// `tokens`: `[t]`; see [`Output`].
///
/// # Panics
/// If `tokens` is empty, a token is out of vocabulary, or the relaxed
/// noise does not have one `[t, kv_heads]` tensor per layer.
pub fn forward<B: Backend>(
    base: &FrozenModel<B>,
    params: &DecisionParams<B>,
    dms: &DmsTrainConfig,
    tokens: &[u32],
    mode: &Mode<B>,
) -> Output<B> {
    assert!(!tokens.is_empty(), "forward of an empty sequence");
    let cfg = &base.config;
    let (t, n_heads, kv, d) = (tokens.len(), cfg.num_heads, cfg.num_kv_heads, cfg.head_dim);
    let group = cfg.group_size();
    let device = &base.device;
    let positions: Vec<usize> = (0..t).collect();
    let rope = base.rope.tables::<B>(&positions, device);
    let (causal, outside) = masks::<B>(t, dms.window, device);
    let neuron = dms.variant == Variant::Neuron;
    let (keep, select) = if neuron {
        neuron_masks::<B>(n_heads, kv, group, d, device)
    } else {
        (None, None)
    };
    let (scale, offset) = (dms.alpha_scale, dms.alpha_offset);
    let mut x = base.embed(tokens);
    let mut zs = Vec::new();
    for (l, b) in base.blocks.iter().enumerate() {
        let normed = b.input_norm.forward(x.clone());
        let qkv = b.qkv.forward(normed.clone());
        let mut q = qkv.clone().narrow(1, 0, n_heads * d);
        if let (Some(sel), false) = (&select, matches!(mode, Mode::Teacher)) {
            let delta = params.proj[l].val();
            q = q + normed.matmul(delta.transpose()).matmul(sel.clone());
        }
        let mut q = q.reshape([t, n_heads, d]);
        let mut k = qkv
            .clone()
            .narrow(1, n_heads * d, kv * d)
            .reshape([t, kv, d]);
        let v = qkv
            .narrow(1, (n_heads + kv) * d, kv * d)
            .reshape([t, kv, d]);
        if let Some((qn, kn)) = &b.qk_norm {
            q = qn.forward(q);
            k = kn.forward(k);
        }
        let logit = match mode {
            Mode::Teacher => None,
            _ if neuron => Some(
                q.clone()
                    .narrow(2, d - 1, 1)
                    .reshape([t, kv, group])
                    .narrow(2, 0, 1)
                    .reshape([t, kv]),
            ),
            _ => {
                let norm = RmsNorm::new(params.norm[l].val(), cfg.rms_norm_eps);
                let mut a = norm
                    .forward(x.clone())
                    .matmul(params.proj[l].val().transpose());
                if let Some(bias) = params.bias.get(l) {
                    a = a + bias.val().unsqueeze::<2>();
                }
                Some(a)
            }
        }
        .map(|a| a.mul_scalar(scale).sub_scalar(offset));
        if let Some(keep) = &keep {
            q = q * keep.clone();
        }
        let mut q = rope.apply(q);
        if let Some(keep) = &keep {
            q = q * keep.clone();
        }
        let k = rope.apply(k);
        let term = match (mode, logit) {
            (Mode::Relaxed { noise, tau }, Some(logit)) => {
                let z = (logit + noise[l].clone()).div_scalar(*tau);
                zs.push(z.clone());
                Some(shift_to_keys(log_sigmoid(z.neg()).transpose()))
            }
            (Mode::Hard, Some(logit)) => {
                zs.push(logit.clone());
                let evict = logit.greater_elem(0.0).float().mul_scalar(MASK_VALUE);
                Some(shift_to_keys(evict.transpose()))
            }
            _ => None,
        };
        let attn = attend(q, k, v, &causal, &outside, term);
        x = x + b.o.forward(attn);
        x = x.clone() + b.mlp.forward(b.post_norm.forward(x));
    }
    let logits = base.lm_head.forward(base.norm.forward(x));
    Output { logits, z: zs }
}

/// The neuron variant's constants: `keep` `[1, n_heads, d]` (0 at the
/// borrowed channel of each group's first head) and `select` `[kv, n_heads·d]`
/// (one-hot rows placing the delta's output on those channels).
fn neuron_masks<B: Backend>(
    n_heads: usize,
    kv: usize,
    group: usize,
    d: usize,
    device: &B::Device,
) -> (Option<Tensor<B, 3>>, Option<Tensor<B, 2>>) {
    let mut keep = vec![1.0f32; n_heads * d];
    let mut select = vec![0.0f32; kv * n_heads * d];
    for h in 0..kv {
        let channel = (h * group) * d + d - 1;
        keep[channel] = 0.0;
        select[h * n_heads * d + channel] = 1.0;
    }
    (
        Some(Tensor::from_data(
            TensorData::new(keep, [1, n_heads, d]),
            device,
        )),
        Some(Tensor::from_data(
            TensorData::new(select, [kv, n_heads * d]),
            device,
        )),
    )
}
