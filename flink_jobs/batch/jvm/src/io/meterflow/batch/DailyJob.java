package io.meterflow.batch;

import java.io.BufferedOutputStream;
import java.io.DataOutputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.util.List;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.util.CloseableIterator;
import org.apache.iceberg.Table;
import org.apache.iceberg.catalog.TableIdentifier;
import org.apache.iceberg.expressions.Expression;
import org.apache.iceberg.expressions.Expressions;
import org.apache.iceberg.flink.CatalogLoader;
import org.apache.iceberg.flink.TableLoader;
import org.apache.iceberg.flink.source.IcebergSource;

/**
 * The batch job: the lake's readings of one scan window, from one snapshot, made into daily rows
 * (Python calls {@link #run} through PyFlink's gateway).
 *
 * <pre>
 * Iceberg readings (snapshot; event-time filter: partitions pruned) ─ LakeReaderFunction: ten columns
 *   of each planned file, in blocks (the source's fetcher thread) ─ DailyOperator (per meter)
 *   ─ DailyRows blocks ─ collected by this client ─► the plan's output file ─► Python (numpy)
 * </pre>
 * The raw readings never leave the JVM; only the daily rows (one per meter x measurement x day)
 * reach Python. Run in batch mode with object reuse (records go from the source to the operator
 * without copies).
 */
public final class DailyJob {
    private DailyJob() {}

    /** Runs the job of {@code planJson} on {@code env}; writes the blocks to the plan's output; the rows written. */
    public static long run(StreamExecutionEnvironment env, String planJson) throws Exception {
        DailyPlan plan = DailyPlan.fromJson(planJson);
        int p = 1; // the operator sees every reading of a meter (see docs/batch.md, Speed)
        TableLoader table = TableLoader.fromCatalog(
                CatalogLoader.custom(plan.catalogName, catalogProperties(plan),
                        new org.apache.hadoop.conf.Configuration(), "org.apache.iceberg.jdbc.JdbcCatalog"),
                TableIdentifier.of(plan.namespace, plan.table));
        Table lake = load(table);
        IcebergSource.Builder<ReadingBlock> builder = IcebergSource.<ReadingBlock>builder()
                .tableLoader(table)
                .readerFunction(new LakeReaderFunction(plan, lake.schema(), lake.io(), lake.encryption()))
                .streaming(false)
                .filters(List.of(window(plan)));
        if (plan.snapshotId != null) {
            builder = builder.useSnapshotId(plan.snapshotId);
        }
        DataStream<ReadingBlock> readings = env
                .fromSource(builder.build(), WatermarkStrategy.noWatermarks(), "lake readings",
                        TypeInformation.of(ReadingBlock.class))
                .setParallelism(p);
        DataStream<byte[]> blocks = readings
                .transform("daily rows", PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO, new DailyOperator(plan))
                .setParallelism(p);
        long rows = 0;
        try (CloseableIterator<byte[]> it = blocks.executeAndCollect(plan.jobName);
             DataOutputStream out = new DataOutputStream(new BufferedOutputStream(new FileOutputStream(plan.output)))) {
            while (it.hasNext()) {
                byte[] block = it.next();
                out.writeInt(block.length);
                out.write(block);
                rows += ((block[4] & 0xffL) << 24) | ((block[5] & 0xffL) << 16) | ((block[6] & 0xffL) << 8) | (block[7] & 0xffL);
            }
        }
        return rows;
    }

    /** {@code scan start <= event_time < scan end}: prunes the day partitions, and rows in the two at its ends. */
    static Expression window(DailyPlan plan) {
        return Expressions.and(
                Expressions.greaterThanOrEqual("event_time", Math.multiplyExact(plan.scanStartMs(), 1000L)),
                Expressions.lessThan("event_time", Math.multiplyExact(plan.scanEndMs(), 1000L)));
    }

    private static Table load(TableLoader loader) {
        TableLoader copy = loader.clone();
        copy.open();
        try {
            return copy.loadTable();
        } finally {
            try {
                copy.close();
            } catch (IOException e) {
                // closing a catalog connection that has done its work
            }
        }
    }

    private static java.util.Map<String, String> catalogProperties(DailyPlan plan) {
        java.util.Map<String, String> props = new java.util.HashMap<>(plan.catalogProperties);
        props.remove("type");
        props.remove("catalog-impl");
        return props;
    }
}
