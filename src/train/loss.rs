//! The retrofitting loss (`docs/method.md` §4.3): KL(student ‖ teacher) over the
//! next-token distributions of unmasked positions, plus the one-sided
//! compression loss `max(0, target_fraction − fraction_evicted)` on
//! straight-through hard decisions.

use burn::prelude::*;
use burn::tensor::activation::{log_softmax, relu, sigmoid};

/// `Σ_pos mask · Σ_v p_s (log p_s − log p_t) / Σ mask`.
///
/// # Shapes
/// `student`, `teacher`: `[t, vocab]` (the teacher detached); `mask`: `t`
/// flags (true = counted); returns `[1]`. All-false masks give 0.
pub fn kl_student_teacher<B: Backend>(
    student: Tensor<B, 2>,
    teacher: Tensor<B, 2>,
    mask: &[bool],
) -> Tensor<B, 1> {
    let [t, _] = student.dims();
    assert_eq!(mask.len(), t, "one mask flag per position");
    let ls = log_softmax(student, 1);
    let lt = log_softmax(teacher.detach(), 1);
    let per_pos = (ls.clone().exp() * (ls - lt)).sum_dim(1);
    let count = mask.iter().filter(|&&m| m).count().max(1) as f32;
    let weights: Vec<f32> = mask
        .iter()
        .map(|&m| if m { 1.0 / count } else { 0.0 })
        .collect();
    let w = Tensor::<B, 2>::from_data(TensorData::new(weights, [t, 1]), &per_pos.device());
    (per_pos * w).sum().reshape([1])
}

/// Straight-through hard decisions `(z > 0) − sg(σ(z)) + σ(z)`: the value is
/// the hard 0/1 decision, the gradient that of `σ(z)`.
///
/// # Shapes
/// `z`: any `[a, b]`; returns the same shape.
pub fn straight_through<B: Backend>(z: Tensor<B, 2>) -> Tensor<B, 2> {
    let p = sigmoid(z.clone());
    z.greater_elem(0.0).float() - p.clone().detach() + p
}

/// Mean straight-through decision over layers, tokens and KV heads.
///
/// # Shapes
/// `z`: per layer `[t, kv_heads]`; returns `[1]`.
pub fn evicted_fraction<B: Backend>(z: &[Tensor<B, 2>]) -> Tensor<B, 1> {
    let n = z.len().max(1) as f64;
    let parts: Vec<Tensor<B, 1>> = z
        .iter()
        .map(|z| straight_through(z.clone()).mean())
        .collect();
    Tensor::cat(parts, 0).sum().div_scalar(n)
}

/// `max(0, target − fraction)`.
///
/// # Shapes
/// `fraction`: `[1]`; returns `[1]`.
pub fn compression_loss<B: Backend>(fraction: Tensor<B, 1>, target: f64) -> Tensor<B, 1> {
    relu(fraction.neg().add_scalar(target))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::flex::Flex;

    type B = Flex;

    fn t2(data: Vec<f32>, shape: [usize; 2]) -> Tensor<B, 2> {
        Tensor::from_data(TensorData::new(data, shape), &Default::default())
    }

    #[test]
    fn kl_matches_a_hand_computation_and_respects_the_mask() {
        // Row 0: p_s = softmax([0, ln 3]) = [1/4, 3/4], p_t = [1/2, 1/2].
        let s = t2(vec![0.0, 3f32.ln(), 5.0, -1.0], [2, 2]);
        let t = t2(vec![0.0, 0.0, 0.0, 0.0], [2, 2]);
        let want = 0.25 * (0.25f64 / 0.5).ln() + 0.75 * (0.75f64 / 0.5).ln();
        let got = kl_student_teacher(s, t, &[true, false]).into_scalar();
        assert!((f64::from(got) - want).abs() < 1e-6, "{got} vs {want}");
    }

    #[test]
    fn compression_loss_is_one_sided() {
        let f =
            |x: f32| Tensor::<B, 1>::from_data(TensorData::new(vec![x], [1]), &Default::default());
        assert!((compression_loss(f(0.25), 0.5).into_scalar() - 0.25).abs() < 1e-7);
        assert_eq!(compression_loss(f(0.75), 0.5).into_scalar(), 0.0);
    }

    #[test]
    fn straight_through_values_are_hard() {
        let z = t2(vec![-3.0, 0.5, 2.0, -0.1], [2, 2]);
        let v = straight_through(z).into_data().into_vec::<f32>().unwrap();
        for (g, w) in v.iter().zip([0.0, 1.0, 1.0, 0.0]) {
            assert!((g - w).abs() < 1e-6, "{v:?}");
        }
    }
}
