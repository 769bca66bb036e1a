//! llama.cpp tensor names ↔ Hugging Face tensor names, and the Q/K row
//! permutation llama.cpp's converter applies to `llama` checkpoints.

/// Whole-model tensors: (llama.cpp name, Hugging Face name).
const GLOBAL: [(&str, &str); 3] = [
    ("token_embd.weight", "model.embed_tokens.weight"),
    ("output_norm.weight", "model.norm.weight"),
    ("output.weight", "lm_head.weight"),
];

/// Per-layer tensors without the `.weight`/`.bias` suffix:
/// (`blk.N.` + llama.cpp stem, `model.layers.N.` + Hugging Face stem).
const LAYER: [(&str, &str); 11] = [
    ("attn_q", "self_attn.q_proj"),
    ("attn_k", "self_attn.k_proj"),
    ("attn_v", "self_attn.v_proj"),
    ("attn_output", "self_attn.o_proj"),
    ("attn_q_norm", "self_attn.q_norm"),
    ("attn_k_norm", "self_attn.k_norm"),
    ("ffn_gate", "mlp.gate_proj"),
    ("ffn_up", "mlp.up_proj"),
    ("ffn_down", "mlp.down_proj"),
    ("attn_norm", "input_layernorm"),
    ("ffn_norm", "post_attention_layernorm"),
];

/// Splits `prefix{N}.{stem}.{weight|bias}` into (N, stem, suffix).
fn split_layer<'a>(name: &'a str, prefix: &str) -> Option<(usize, &'a str, &'a str)> {
    let rest = name.strip_prefix(prefix)?;
    let (layer, rest) = rest.split_once('.')?;
    if layer.is_empty() || !layer.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let layer = layer.parse().ok()?;
    let (stem, suffix) = rest.rsplit_once('.')?;
    matches!(suffix, "weight" | "bias").then_some((layer, stem, suffix))
}

/// The Hugging Face name of a llama.cpp tensor, if it is one the
/// transformer uses (`blk.3.ffn_up.weight` → `model.layers.3.mlp.up_proj.weight`).
pub fn hf_name(gguf: &str) -> Option<String> {
    if let Some((_, hf)) = GLOBAL.iter().find(|(g, _)| *g == gguf) {
        return Some((*hf).to_owned());
    }
    let (layer, stem, suffix) = split_layer(gguf, "blk.")?;
    let (_, hf) = LAYER.iter().find(|(g, _)| *g == stem)?;
    Some(format!("model.layers.{layer}.{hf}.{suffix}"))
}

/// The llama.cpp name of a Hugging Face tensor name (inverse of [`hf_name`]).
pub fn gguf_name(hf: &str) -> Option<String> {
    if let Some((g, _)) = GLOBAL.iter().find(|(_, h)| *h == hf) {
        return Some((*g).to_owned());
    }
    let (layer, stem, suffix) = split_layer(hf, "model.layers.")?;
    let (g, _) = LAYER.iter().find(|(_, h)| *h == stem)?;
    Some(format!("blk.{layer}.{g}.{suffix}"))
}

/// Which head count a `llama` GGUF's rows were permuted with: the query
/// projection uses `head_count`, the key projection `head_count_kv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermutedProjection {
    Query,
    Key,
}

/// Whether a Hugging Face tensor was row-permuted by llama.cpp's converter
/// (weights and biases of `q_proj` and `k_proj`).
pub fn permuted_projection(hf: &str) -> Option<PermutedProjection> {
    let (_, stem, _) = split_layer(hf, "model.layers.")?;
    match stem {
        "self_attn.q_proj" => Some(PermutedProjection::Query),
        "self_attn.k_proj" => Some(PermutedProjection::Key),
        _ => None,
    }
}

/// Row `r` of the llama.cpp layout holds Hugging Face row `source_row(r)`.
///
/// llama.cpp's `permute` reshapes each head's rows `[hd]` as `[2, hd/2]` and
/// swaps the axes, so within a head the GGUF row `2i + j` is HF row
/// `j·hd/2 + i`: the two halves HF rotates together become adjacent pairs.
fn hf_row_of_gguf_row(r: usize, head_dim: usize) -> usize {
    let (head, within) = (r / head_dim, r % head_dim);
    let (i, j) = (within / 2, within % 2);
    head * head_dim + j * (head_dim / 2) + i
}

fn check_heads(rows: usize, n_head: usize) -> Result<usize, String> {
    if n_head == 0 || !rows.is_multiple_of(n_head) || !(rows / n_head).is_multiple_of(2) {
        return Err(format!(
            "{rows} rows cannot be split into {n_head} heads of even size"
        ));
    }
    Ok(rows / n_head)
}

/// Undoes llama.cpp's Q/K permutation so rotate-half (NEOX) RoPE applies:
/// per head, `w.reshape(hd/2, 2, cols).swapaxes(0, 1)`.
///
/// # Shapes
/// `data` is row-major `[rows, cols]` (`cols = 1` for a bias), with
/// `rows = n_head * head_dim` and `head_dim` even.
pub fn unpermute_rows<T: Copy + Default>(
    data: &[T],
    cols: usize,
    n_head: usize,
) -> Result<Vec<T>, String> {
    let rows = data.len().checked_div(cols).unwrap_or(0);
    let head_dim = check_heads(rows, n_head)?;
    let mut out = vec![T::default(); data.len()];
    for r in 0..rows {
        let hf = hf_row_of_gguf_row(r, head_dim);
        out[hf * cols..(hf + 1) * cols].copy_from_slice(&data[r * cols..(r + 1) * cols]);
    }
    Ok(out)
}

/// llama.cpp `convert_hf_to_gguf.py`'s `permute`, the inverse of
/// [`unpermute_rows`]: HF rows to the GGUF (interleaved-pair) order.
///
/// # Shapes
/// As for [`unpermute_rows`].
pub fn permute_rows(data: &[f32], cols: usize, n_head: usize) -> Result<Vec<f32>, String> {
    let rows = data.len().checked_div(cols).unwrap_or(0);
    let head_dim = check_heads(rows, n_head)?;
    let mut out = vec![0.0; data.len()];
    for r in 0..rows {
        let hf = hf_row_of_gguf_row(r, head_dim);
        out[r * cols..(r + 1) * cols].copy_from_slice(&data[hf * cols..(hf + 1) * cols]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_both_ways() {
        let pairs = [
            ("token_embd.weight", "model.embed_tokens.weight"),
            ("output.weight", "lm_head.weight"),
            ("output_norm.weight", "model.norm.weight"),
            (
                "blk.0.attn_q.weight",
                "model.layers.0.self_attn.q_proj.weight",
            ),
            (
                "blk.12.attn_k.bias",
                "model.layers.12.self_attn.k_proj.bias",
            ),
            (
                "blk.3.attn_output.weight",
                "model.layers.3.self_attn.o_proj.weight",
            ),
            (
                "blk.29.ffn_down.weight",
                "model.layers.29.mlp.down_proj.weight",
            ),
            (
                "blk.1.attn_norm.weight",
                "model.layers.1.input_layernorm.weight",
            ),
            (
                "blk.1.ffn_norm.weight",
                "model.layers.1.post_attention_layernorm.weight",
            ),
            (
                "blk.4.attn_k_norm.weight",
                "model.layers.4.self_attn.k_norm.weight",
            ),
        ];
        for (g, h) in pairs {
            assert_eq!(hf_name(g).as_deref(), Some(h), "{g}");
            assert_eq!(gguf_name(h).as_deref(), Some(g), "{h}");
        }
        assert_eq!(hf_name("rope_freqs.weight"), None);
        assert_eq!(hf_name("blk.x.attn_q.weight"), None);
        assert_eq!(
            gguf_name("model.layers.0.self_attn.rotary_emb.inv_freq"),
            None
        );
    }

    #[test]
    fn permutation_matches_numpy_reshape_swapaxes() {
        // numpy: w.reshape(n_head, 2, hd//2, cols).swapaxes(1, 2).reshape(rows, cols)
        // for n_head = 2, hd = 4: HF rows [0,1,2,3 | 4,5,6,7] -> [0,2,1,3 | 4,6,5,7].
        let hf: Vec<f32> = (0..8).map(|r| r as f32).collect();
        let gguf = permute_rows(&hf, 1, 2).unwrap();
        assert_eq!(gguf, vec![0., 2., 1., 3., 4., 6., 5., 7.]);
        assert_eq!(unpermute_rows(&gguf, 1, 2).unwrap(), hf);
    }

    #[test]
    fn odd_head_dim_is_an_error() {
        assert!(unpermute_rows(&[0.0; 6], 1, 2).is_err());
        assert!(unpermute_rows(&[0.0; 8], 1, 3).is_err());
    }

    #[test]
    fn projection_kinds() {
        assert_eq!(
            permuted_projection("model.layers.2.self_attn.q_proj.bias"),
            Some(PermutedProjection::Query)
        );
        assert_eq!(
            permuted_projection("model.layers.2.self_attn.k_proj.weight"),
            Some(PermutedProjection::Key)
        );
        assert_eq!(
            permuted_projection("model.layers.2.self_attn.v_proj.weight"),
            None
        );
    }
}
