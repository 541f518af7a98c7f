use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use datafusion::arrow::datatypes::*;
use weir_engine::source::SourceEvent;

#[tokio::test(flavor = "multi_thread")]
async fn perf() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int64, true), Field::new("s", DataType::Utf8, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true), Field::new("x", DataType::Float64, true)]));
    let mut o = BTreeMap::new();
    o.insert("connector".to_string(), "datagen".to_string());
    o.insert("rows-per-second".to_string(), "100000000".to_string());
    o.insert("number-of-rows".to_string(), "1000000".to_string());
    o.insert("fields.s.length".to_string(), "10".to_string());
    let t = weir_connectors::create_table("t", &o, schema.clone()).unwrap();
    let src = t.source.unwrap();
    let start = Instant::now();
    let mut r = src.open(vec![0], 1).unwrap();
    let mut n = 0;
    let mut batches = vec![];
    while let Some(e) = r.next().await.unwrap() { if let SourceEvent::Batch { batch, .. } = e { n += batch.num_rows(); batches.push(batch); } }
    println!("datagen 1M rows: {:?} ({n})", start.elapsed());
    let dir = tempfile::tempdir().unwrap();
    for fmt in ["json", "csv"] {
        let mut o = BTreeMap::new();
        o.insert("connector".to_string(), "filesystem".to_string());
        o.insert("format".to_string(), fmt.to_string());
        o.insert("path".to_string(), dir.path().join(fmt).to_string_lossy().into_owned());
        let t = weir_connectors::create_table("t", &o, schema.clone()).unwrap();
        let start = Instant::now();
        let mut w = t.sink.unwrap().open("j", 0, 1).unwrap();
        for b in &batches { w.write(b.clone()).await.unwrap(); }
        w.finish().await.unwrap();
        println!("{fmt} write 1M rows: {:?}", start.elapsed());
        let start = Instant::now();
        let src = t.source.unwrap();
        let p = src.partitions(1).unwrap();
        let mut r = src.open((0..p).collect(), 1).unwrap();
        let mut n = 0;
        while let Some(e) = r.next().await.unwrap() { if let SourceEvent::Batch { batch, .. } = e { n += batch.num_rows(); } }
        println!("{fmt} read 1M rows: {:?} ({n})", start.elapsed());
    }
}
