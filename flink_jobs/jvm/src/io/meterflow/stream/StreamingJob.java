package io.meterflow.stream;

import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.kafka.shaded.org.apache.kafka.clients.consumer.OffsetResetStrategy;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.runtime.typeutils.InternalTypeInfo;
import org.apache.flink.table.types.logical.RowType;
import org.apache.iceberg.Table;
import org.apache.iceberg.catalog.TableIdentifier;
import org.apache.iceberg.flink.CatalogLoader;
import org.apache.iceberg.flink.FlinkSchemaUtil;
import org.apache.iceberg.flink.TableLoader;
import org.apache.iceberg.flink.sink.FlinkSink;

/**
 * Builds the streaming job of one MeterPipeline from its {@link Plan} (Python calls
 * {@link #build} through PyFlink's gateway, then submits the environment).
 *
 * <pre>
 * Kafka readings ─ parse + validate (ReadingDeserializer) ─ IngestSplitter ─┬─ dead letters ─► Kafka .readings.dlq (exactly once)
 *                                                                           └─ keyBy(meter) ─ MeterOperator ─┬─ lake rows ─► Iceberg (exactly once)
 * Kafka alert-commands (ack, resolve) ─ keyBy(meter) ───────────────────────────────────┘                    ├─ windows ─ RowBinaryBlocks ─► Kafka .aggregates
 *                                                                                                            └─ alert transitions ─► Kafka .alerts (fast lane)
 * counter increments (both operators) ─ keyBy(minute, counter) ─ CounterOperator ─► Kafka .counters (exactly once)
 * </pre>
 * Every operator has a stable uid, so savepoints survive changes to the job.
 */
public final class StreamingJob {
    static final int BLOCK_BYTES = 256 * 1024;
    static final long BLOCK_LINGER_MS = 100;
    static final long COMMANDS_IDLE_MS = 200;

    private StreamingJob() {}

    /** Adds the job of {@code planJson} to {@code env}. */
    public static void build(StreamExecutionEnvironment env, String planJson) {
        Plan plan = Plan.fromJson(planJson);
        int p = plan.parallelism;
        Plan.Kafka kafka = plan.kafka;

        Properties sourceProps = new Properties();
        sourceProps.putAll(kafka.sourceProperties);
        KafkaSource<Reading> source = KafkaSource.<Reading>builder()
                .setBootstrapServers(kafka.bootstrap)
                .setTopics(kafka.readings)
                .setGroupId(kafka.groupId)
                .setStartingOffsets(OffsetsInitializer.committedOffsets(OffsetResetStrategy.EARLIEST))
                .setDeserializer(new ReadingDeserializer(plan))
                .setProperties(sourceProps)
                .build();
        WatermarkStrategy<Reading> watermarks = WatermarkStrategy
                .<Reading>forGenerator(context -> new ReadingWatermarks(plan.graceMs))
                .withTimestampAssigner((reading, ts) -> reading.valid() ? reading.eventTime : reading.ingestTime);
        if (plan.idleTimeoutMs > 0) {
            watermarks = watermarks.withIdleness(Duration.ofMillis(plan.idleTimeoutMs));
        }
        SingleOutputStreamOperator<Reading> records = env.fromSource(source, watermarks, "readings")
                .uid("readings-source").setParallelism(p);
        SingleOutputStreamOperator<Reading> valid = records
                .transform("validate", ReadingTypeInfo.INSTANCE, new IngestSplitter())
                .uid("ingest-splitter").setParallelism(p);
        valid.getSideOutput(IngestSplitter.DEAD_LETTERS)
                .sinkTo(exactlyOnce(kafka, "dlq", new KafkaRecords.DeadLetters(kafka.deadLetters, plan.pipeline)))
                .name("dead letters").uid("dead-letter-sink").setParallelism(p);

        TableLoader lakeTable = TableLoader.fromCatalog(
                CatalogLoader.custom(plan.lake.catalogName, catalogProperties(plan.lake),
                        new org.apache.hadoop.conf.Configuration(), "org.apache.iceberg.jdbc.JdbcCatalog"),
                TableIdentifier.of(plan.lake.namespace, plan.lake.table));
        RowType lakeRow = lakeRowType(lakeTable);
        // People's actions on alerts: rare, so the source is idle most of the time, and an idle
        // input never holds the meter operator's watermark back.
        KafkaSource<AlertCommand> commandSource = KafkaSource.<AlertCommand>builder()
                .setBootstrapServers(kafka.bootstrap)
                .setTopics(kafka.alertCommands)
                .setGroupId(kafka.groupId)
                .setStartingOffsets(OffsetsInitializer.committedOffsets(OffsetResetStrategy.EARLIEST))
                .setDeserializer(new KafkaRecords.Commands())
                .setProperty("isolation.level", "read_committed")
                .build();
        DataStream<AlertCommand> commands = env.fromSource(commandSource,
                        WatermarkStrategy.<AlertCommand>noWatermarks().withIdleness(Duration.ofMillis(COMMANDS_IDLE_MS)),
                        "alert commands")
                .uid("alert-commands-source").setParallelism(1);
        SingleOutputStreamOperator<RowData> lake = valid
                .keyBy(new ByMeter())
                .connect(commands.keyBy(new CommandByMeter()))
                .transform("meters", InternalTypeInfo.of(lakeRow), new MeterOperator(plan))
                .uid("meters").setParallelism(p);
        FlinkSink.forRowData(lake).tableLoader(lakeTable).writeParallelism(p).uidPrefix("lake").append();

        lake.getSideOutput(MeterOperator.WINDOWS)
                .transform("rowbinary blocks", PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO,
                        new RowBinaryBlocks(plan, BLOCK_BYTES, BLOCK_LINGER_MS))
                .uid("window-blocks").setParallelism(p)
                .sinkTo(atLeastOnce(kafka, new KafkaRecords.Blocks(kafka.aggregates), "20"))
                .name("aggregates").uid("aggregates-sink").setParallelism(p);
        lake.getSideOutput(MeterOperator.ALERTS)
                .sinkTo(atLeastOnce(kafka, new KafkaRecords.Alerts(kafka.alerts, plan), "5"))
                .name("alerts").uid("alerts-sink").setParallelism(p);

        DataStream<CounterCount> increments = valid.getSideOutput(IngestSplitter.COUNTS)
                .union(lake.getSideOutput(MeterOperator.COUNTS));
        increments.keyBy(new ByCounter())
                .transform("counters", TypeInformation.of(CounterCount.class), new CounterOperator())
                .uid("counters").setParallelism(p)
                .sinkTo(exactlyOnce(kafka, "counters", new KafkaRecords.Counters(kafka.counters)))
                .name("counters").uid("counters-sink").setParallelism(p);
    }

    /** The Flink row type of the lake table (the Iceberg writer's input). */
    private static RowType lakeRowType(TableLoader loader) {
        TableLoader copy = loader.clone();
        copy.open();
        try {
            Table table = copy.loadTable();
            return FlinkSchemaUtil.convert(table.schema());
        } finally {
            try {
                copy.close();
            } catch (java.io.IOException e) {
                // closing a catalog connection that has done its work
            }
        }
    }

    private static Map<String, String> catalogProperties(Plan.Lake lake) {
        Map<String, String> props = new HashMap<>(lake.catalogProperties);
        props.remove("type");
        props.remove("catalog-impl");
        return props;
    }

    private static <T> KafkaSink<T> exactlyOnce(Plan.Kafka kafka, String name, KafkaRecordSerializationSchema<T> records) {
        return KafkaSink.<T>builder()
                .setBootstrapServers(kafka.bootstrap)
                .setRecordSerializer(records)
                .setDeliveryGuarantee(DeliveryGuarantee.EXACTLY_ONCE)
                .setTransactionalIdPrefix(kafka.transactionalIdPrefix + "-" + name)
                .setProperty("transaction.timeout.ms", "900000")
                .build();
    }

    private static <T> KafkaSink<T> atLeastOnce(Plan.Kafka kafka, KafkaRecordSerializationSchema<T> records, String lingerMs) {
        return KafkaSink.<T>builder()
                .setBootstrapServers(kafka.bootstrap)
                .setRecordSerializer(records)
                .setDeliveryGuarantee(DeliveryGuarantee.AT_LEAST_ONCE)
                .setProperty("linger.ms", lingerMs)
                .setProperty("max.request.size", String.valueOf(4 * BLOCK_BYTES))
                .build();
    }

    /** Readings are partitioned by meter: all of a meter's state lives in one place. */
    static final class ByMeter implements KeySelector<Reading, String> {
        private static final long serialVersionUID = 1L;

        @Override
        public String getKey(Reading reading) {
            return reading.meterId;
        }
    }

    static final class CommandByMeter implements KeySelector<AlertCommand, String> {
        private static final long serialVersionUID = 1L;

        @Override
        public String getKey(AlertCommand command) {
            return command.meterId;
        }
    }

    static final class ByCounter implements KeySelector<CounterCount, String> {
        private static final long serialVersionUID = 1L;

        @Override
        public String getKey(CounterCount count) {
            return count.key();
        }
    }
}
