//! boto3 drives berth (`tests/python/boto3_workflow.py`): register the seed, run,
//! waiters, describe, paginators, tags, MISSING failures, clientToken retries and
//! modeled exceptions, with every response checked against botocore's ECS model.

mod api_support;

use api_support::{python, repo_root, setup};
use berth_tests::require_e2e;

#[test]
fn boto3_workflow_with_waiters_paginators_and_model_checked_responses() {
    require_e2e!();
    let (d, image) = setup();
    let seed = repo_root().join("runtime/tests/data/seeds/sample-web-busybox.json");
    let out = python(
        &d,
        "boto3_workflow.py",
        &[&image, &seed.display().to_string()],
    );
    assert!(out.contains("ok:"), "{out}");
    d.assert_clean();
}
