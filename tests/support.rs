//! The support code's promises to readers who point the examples at their own cluster.

use elasticsearch::IndexParts;
use elasticsearch::indices::IndicesDeleteParts;
use esbook::{Cluster, Needs, doc};
use serde_json::json;

/// An index the book did not create is never deleted: `fresh_index` refuses, and the index and
/// its document are still there afterwards.
#[tokio::test]
async fn fresh_index_leaves_an_index_it_did_not_create_alone() {
    let cluster = Cluster::connect(Needs::Core).await.expect("a cluster");
    let client = &cluster.client;
    let index = "test-someone-elses-index";
    client
        .indices()
        .delete(IndicesDeleteParts::Index(&[index]))
        .send()
        .await
        .unwrap();
    let created = client
        .index(IndexParts::IndexId(index, "1"))
        .body(json!({ "precious": true }))
        .send()
        .await
        .unwrap();
    assert!(created.status_code().is_success());

    let refused = doc::fresh_index(client, index).await.unwrap_err();
    assert!(
        refused.to_string().contains("was not created by this book"),
        "{refused}"
    );
    let still_there = doc::read(client, index, "1")
        .await
        .expect("the document survived");
    assert_eq!(still_there.source["precious"], true);

    client
        .indices()
        .delete(IndicesDeleteParts::Index(&[index]))
        .send()
        .await
        .unwrap();
}

/// An index the book created is recreated empty, so every run starts from the same state.
#[tokio::test]
async fn fresh_index_recreates_its_own_index_empty() {
    let cluster = Cluster::connect(Needs::Core).await.expect("a cluster");
    let client = &cluster.client;
    let index = "test-fresh-index";
    doc::fresh_index(client, index).await.unwrap();
    doc::put(client, index, "1", json!({ "n": 1 }))
        .await
        .unwrap();
    doc::fresh_index(client, index).await.unwrap();
    let gone = client
        .get(elasticsearch::GetParts::IndexId(index, "1"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status_code().as_u16(), 404);
}
