//! Inputs several commands share: a model argument on a device, a task's
//! data flags.

use crate::cli::{DataArgs, ModelArgs};
use crate::hub;
use crate::runtime::LoadedModel;
use crate::task::LoadOptions;

use super::CommandError;

/// A task's load options: the environment's, overridden by the flags.
pub fn load_options(args: &DataArgs) -> LoadOptions {
    let mut opts = LoadOptions::from_env();
    opts.data = args.data.clone();
    opts.lenient = args.lenient;
    opts.zip_password = args.password.clone();
    opts
}

/// Loads `--model` (a path, or `hf:ORG/NAME[@REV]` resolved through the
/// Hugging Face cache, downloading what is missing) on `--device` with
/// `--decode-weights`, its KV cache in `--kv-dtype`.
pub fn load_model(args: &ModelArgs) -> Result<LoadedModel, CommandError> {
    let model = load_model_on(args, args.device, args.decode_weights)?;
    Ok(model.with_kv_dtype(args.kv_dtype)?)
}

/// [`load_model`] on another device and weight form than the flags'.
pub(super) fn load_model_on(
    args: &ModelArgs,
    device: crate::device::DeviceKind,
    decode: crate::model::DecodeWeights,
) -> Result<LoadedModel, CommandError> {
    let path = match args.model.to_str() {
        Some(text) => hub::resolve_model_arg(text)?,
        None => args.model.clone(),
    };
    Ok(LoadedModel::load_with(&path, device, decode)?)
}
