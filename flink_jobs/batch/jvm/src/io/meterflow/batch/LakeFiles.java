package io.meterflow.batch;

import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;

import org.apache.iceberg.FileScanTask;
import org.apache.iceberg.Schema;
import org.apache.iceberg.io.CloseableIterator;
import org.apache.iceberg.shaded.org.apache.parquet.ParquetReadOptions;
import org.apache.iceberg.shaded.org.apache.parquet.column.ColumnDescriptor;
import org.apache.iceberg.shaded.org.apache.parquet.column.ColumnReader;
import org.apache.iceberg.shaded.org.apache.parquet.column.impl.ColumnReadStoreImpl;
import org.apache.iceberg.shaded.org.apache.parquet.column.page.PageReadStore;
import org.apache.iceberg.shaded.org.apache.parquet.hadoop.ParquetFileReader;
import org.apache.iceberg.shaded.org.apache.parquet.io.DelegatingSeekableInputStream;
import org.apache.iceberg.shaded.org.apache.parquet.io.InputFile;
import org.apache.iceberg.shaded.org.apache.parquet.io.SeekableInputStream;
import org.apache.iceberg.shaded.org.apache.parquet.io.api.Binary;
import org.apache.iceberg.shaded.org.apache.parquet.io.api.Converter;
import org.apache.iceberg.shaded.org.apache.parquet.io.api.GroupConverter;
import org.apache.iceberg.shaded.org.apache.parquet.io.api.PrimitiveConverter;
import org.apache.iceberg.shaded.org.apache.parquet.schema.LogicalTypeAnnotation;
import org.apache.iceberg.shaded.org.apache.parquet.schema.MessageType;
import org.apache.iceberg.shaded.org.apache.parquet.schema.PrimitiveType;
import org.apache.iceberg.shaded.org.apache.parquet.schema.Type;
import org.apache.iceberg.types.Types;

/**
 * Reads the lake's Parquet data files column by column into {@link ReadingBlock}s.
 *
 * <p>Iceberg plans the scan (snapshot, partitions, files); this reads each planned file's ten
 * columns with Parquet's column readers — no row objects, no per-row filter. String columns are
 * dictionary-encoded, and a dictionary hands out one {@link Binary} per distinct value, so the
 * meter id and the (measurement, series) pair are looked up by identity first ({@link Strings}).
 * Columns are found by Iceberg field id (by name in a file written without ids). The readings
 * table is append-only: a planned file with delete files is refused, not misread.
 */
final class LakeFiles {
    /** The table's columns the batch reads, in the order the column readers are kept. */
    static final String[] COLUMNS = {"meter_id", "measurement_type", "series", "unit", "value", "event_time",
            "ingest_time", "kafka_partition", "kafka_offset", "late"};
    static final int METER = 0, MEASUREMENT = 1, SERIES = 2, UNIT = 3, VALUE = 4, EVENT = 5, INGEST = 6,
            PARTITION = 7, OFFSET = 8, LATE = 9;

    private LakeFiles() {}

    /**
     * Interned values of the string columns, shared by the files one reader reads. A meter gets a
     * dense index the first time it is seen (the operator keeps its readings at that index).
     */
    static final class Strings {
        private final Map<String, Map<String, Integer>> index = new HashMap<>();
        private final String[] units;
        private final Map<Binary, Integer> meterByContent = new HashMap<>();
        private final IdentityHashMap<Binary, Integer> meterByIdentity = new IdentityHashMap<>();
        private final List<String> meters = new ArrayList<>();
        private final Map<Binary, String> byContent = new HashMap<>();
        private final Few<String> measurementNames = new Few<>();
        private final Few<String> seriesNames = new Few<>();
        private final Few<String> unitNames = new Few<>();
        private final Few<Byte> pairs = new Few<>();

        Strings(DailyPlan plan) {
            units = new String[plan.measurements.size()];
            for (int i = 0; i < units.length; i++) {
                DailyPlan.Measurement m = plan.measurements.get(i);
                index.computeIfAbsent(m.name, k -> new HashMap<>()).put(m.series, i);
                units[i] = m.unit;
            }
        }

        /** The meter's index (its id is {@link #meter}); a dictionary's Binary is found by identity. */
        int meterIndex(Binary value) {
            Integer i = meterByIdentity.get(value);
            if (i == null) {
                i = meterByContent.get(value);
                if (i == null) {
                    Binary key = value.copy();
                    i = meters.size();
                    meters.add(key.toStringUsingUTF8());
                    meterByContent.put(key, i);
                }
                if (meterByIdentity.size() > 1 << 16) {
                    meterByIdentity.clear(); // a plain-encoded column makes a new Binary per value
                }
                meterByIdentity.put(value, i);
            }
            return i;
        }

        String meter(int index) {
            return meters.get(index);
        }

        /** The (measurement, series) pair's position in the plan, or {@link ReadingBlock#UNDECLARED}. */
        byte measurement(Binary name, Binary series) {
            Byte m = pairs.get(name, series);
            if (m == null) {
                Map<String, Integer> bySeries = index.get(text(measurementNames, name));
                Integer i = bySeries == null ? null : bySeries.get(text(seriesNames, series));
                m = i == null ? ReadingBlock.UNDECLARED : (byte) (int) i;
                pairs.put(name, series, m);
            }
            return m;
        }

        /** The unit when it is not measurement {@code m}'s, else null. */
        String unitUnlessUsual(Binary unit, int m) {
            String u = text(unitNames, unit);
            return u.equals(units[m]) ? null : u;
        }

        private String text(Few<String> cache, Binary value) {
            String s = cache.get(value, null);
            if (s == null) {
                s = byContent.get(value);
                if (s == null) {
                    Binary key = value.copy();
                    s = key.toStringUsingUTF8();
                    byContent.put(key, s);
                }
                cache.put(value, null, s);
            }
            return s;
        }

        /** Forgets the identities (a new row group has new dictionaries). */
        void newRowGroup() {
            meterByIdentity.clear();
            measurementNames.clear();
            seriesNames.clear();
            unitNames.clear();
            pairs.clear();
        }
    }

    /**
     * A few values keyed by one or two Binaries' identity: the columns with a handful of distinct
     * values (measurement, series, unit) are answered by a reference comparison or two.
     */
    static final class Few<V> {
        private static final int SIZE = 16;
        private final Binary[] first = new Binary[SIZE];
        private final Binary[] second = new Binary[SIZE];
        private final Object[] values = new Object[SIZE];
        private int used;
        private int next;

        @SuppressWarnings("unchecked")
        V get(Binary a, Binary b) {
            for (int i = 0; i < used; i++) {
                if (first[i] == a && second[i] == b) {
                    return (V) values[i];
                }
            }
            return null;
        }

        void put(Binary a, Binary b, V value) {
            first[next] = a;
            second[next] = b;
            values[next] = value;
            next = (next + 1) % SIZE;
            used = Math.max(used, next == 0 ? SIZE : next);
        }

        void clear() {
            java.util.Arrays.fill(first, null);
            java.util.Arrays.fill(second, null);
            java.util.Arrays.fill(values, null);
            used = 0;
            next = 0;
        }
    }

    /** The blocks of one planned file; {@code skipBlocks} of them are skipped (a restored split). */
    static CloseableIterator<ReadingBlock> blocks(FileScanTask task, org.apache.iceberg.io.InputFile file,
                                                  Schema table, Strings strings, long skipBlocks) {
        if (!task.deletes().isEmpty()) {
            throw new UnsupportedOperationException("data file " + task.file().location()
                    + " has delete files; the batch reads the append-only readings table only");
        }
        try {
            return new FileBlocks(file, table, strings, skipBlocks);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException("cannot read " + task.file().location(), e);
        }
    }

    private static final class FileBlocks implements CloseableIterator<ReadingBlock> {
        private final ParquetFileReader reader;
        private final MessageType requested;
        private final ColumnDescriptor[] descriptors;
        private final long[] timeScale = new long[2];
        private final Strings strings;
        private final String createdBy;
        private ColumnReader[] columns;
        private long rowsLeft;
        private ReadingBlock next;
        private long skip;

        FileBlocks(org.apache.iceberg.io.InputFile file, Schema table, Strings strings, long skipBlocks) throws IOException {
            this.strings = strings;
            this.skip = skipBlocks;
            this.reader = ParquetFileReader.open(new ParquetInput(file), ParquetReadOptions.builder().build());
            MessageType schema = reader.getFooter().getFileMetaData().getSchema();
            this.createdBy = reader.getFooter().getFileMetaData().getCreatedBy();
            List<Type> fields = new ArrayList<>();
            for (String name : COLUMNS) {
                fields.add(find(schema, table.findField(name)));
            }
            this.requested = new MessageType(schema.getName(), fields);
            reader.setRequestedSchema(requested);
            this.descriptors = new ColumnDescriptor[COLUMNS.length];
            for (int i = 0; i < COLUMNS.length; i++) {
                descriptors[i] = requested.getColumnDescription(new String[] {fields.get(i).getName()});
            }
            timeScale[0] = microsPer(fields.get(EVENT));
            timeScale[1] = microsPer(fields.get(INGEST));
        }

        private static Type find(MessageType schema, Types.NestedField field) {
            if (field == null) {
                throw new IllegalStateException("the readings table lacks a column the batch reads");
            }
            for (Type t : schema.getFields()) {
                if (t.getId() != null && t.getId().intValue() == field.fieldId()) {
                    return t;
                }
            }
            if (schema.containsField(field.name())) {
                return schema.getType(field.name());
            }
            throw new IllegalStateException("a data file lacks column " + field.name());
        }

        /** Microseconds per unit of a timestamp column (Iceberg writes micros; others are converted). */
        private static long microsPer(Type t) {
            LogicalTypeAnnotation a = t.getLogicalTypeAnnotation();
            if (a instanceof LogicalTypeAnnotation.TimestampLogicalTypeAnnotation ts) {
                switch (ts.getUnit()) {
                    case MILLIS: return 1000L;
                    case MICROS: return 1L;
                    case NANOS: return -1000L; // divide
                    default: break;
                }
            }
            if (t.asPrimitiveType().getPrimitiveTypeName() != PrimitiveType.PrimitiveTypeName.INT64) {
                throw new IllegalStateException("column " + t.getName() + " is not an INT64 timestamp");
            }
            return 1L;
        }

        private static long micros(long raw, long scale) {
            return scale > 0 ? raw * scale : raw / -scale;
        }

        @Override
        public boolean hasNext() {
            try {
                while (next == null) {
                    ReadingBlock block = read();
                    if (block == null) {
                        return false;
                    }
                    if (skip > 0) {
                        skip--;
                        continue;
                    }
                    next = block;
                }
                return true;
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }

        @Override
        public ReadingBlock next() {
            if (!hasNext()) {
                throw new NoSuchElementException();
            }
            ReadingBlock out = next;
            next = null;
            return out;
        }

        private ReadingBlock read() throws IOException {
            while (rowsLeft == 0) {
                PageReadStore pages = reader.readNextRowGroup();
                if (pages == null) {
                    return null;
                }
                rowsLeft = pages.getRowCount();
                ColumnReadStoreImpl store = new ColumnReadStoreImpl(pages, new Ignored(descriptors.length), requested, createdBy);
                columns = new ColumnReader[descriptors.length];
                for (int i = 0; i < descriptors.length; i++) {
                    columns[i] = store.getColumnReader(descriptors[i]);
                }
                strings.newRowGroup();
            }
            ReadingBlock b = new ReadingBlock();
            int n = (int) Math.min(rowsLeft, ReadingBlock.CAPACITY);
            ColumnReader meter = columns[METER], measurement = columns[MEASUREMENT], series = columns[SERIES],
                    unit = columns[UNIT], value = columns[VALUE], event = columns[EVENT], ingest = columns[INGEST],
                    partition = columns[PARTITION], offset = columns[OFFSET], late = columns[LATE];
            int dIngest = descriptors[INGEST].getMaxDefinitionLevel(), dPartition = descriptors[PARTITION].getMaxDefinitionLevel(),
                    dOffset = descriptors[OFFSET].getMaxDefinitionLevel(), dLate = descriptors[LATE].getMaxDefinitionLevel();
            long eventScale = timeScale[0], ingestScale = timeScale[1];
            for (int i = 0; i < n; i++) {
                byte m = strings.measurement(measurement.getBinary(), series.getBinary());
                measurement.consume();
                series.consume();
                b.measurement[i] = m;
                int id = strings.meterIndex(meter.getBinary());
                b.meterIndex[i] = id;
                b.meter[i] = strings.meter(id);
                meter.consume();
                if (m != ReadingBlock.UNDECLARED) {
                    b.unit[i] = strings.unitUnlessUsual(unit.getBinary(), m);
                }
                unit.consume();
                b.value[i] = value.getDouble();
                value.consume();
                b.eventMicros[i] = micros(event.getLong(), eventScale);
                event.consume();
                b.ingestMicros[i] = ingest.getCurrentDefinitionLevel() == dIngest ? micros(ingest.getLong(), ingestScale) : ReadingBlock.NULL_LONG;
                ingest.consume();
                b.partition[i] = partition.getCurrentDefinitionLevel() == dPartition ? partition.getInteger() : ReadingBlock.NULL_INT;
                partition.consume();
                b.offset[i] = offset.getCurrentDefinitionLevel() == dOffset ? offset.getLong() : ReadingBlock.NULL_LONG;
                offset.consume();
                b.late[i] = late.getCurrentDefinitionLevel() == dLate && late.getBoolean();
                late.consume();
            }
            b.size = n;
            rowsLeft -= n;
            return b;
        }

        @Override
        public void close() throws IOException {
            reader.close();
        }
    }

    /** Column readers need a converter tree; values are read from the readers, so it ignores them. */
    private static final class Ignored extends GroupConverter {
        private final PrimitiveConverter[] children;

        Ignored(int n) {
            children = new PrimitiveConverter[n];
            for (int i = 0; i < n; i++) {
                children[i] = new PrimitiveConverter() {};
            }
        }

        @Override
        public Converter getConverter(int fieldIndex) {
            return children[fieldIndex];
        }

        @Override
        public void start() {}

        @Override
        public void end() {}
    }

    /** An Iceberg InputFile as Parquet's (what Iceberg's own Parquet reader does). */
    private static final class ParquetInput implements InputFile {
        private final org.apache.iceberg.io.InputFile file;

        ParquetInput(org.apache.iceberg.io.InputFile file) {
            this.file = file;
        }

        @Override
        public long getLength() {
            return file.getLength();
        }

        @Override
        public SeekableInputStream newStream() {
            org.apache.iceberg.io.SeekableInputStream in = file.newStream();
            return new DelegatingSeekableInputStream(in) {
                @Override
                public long getPos() throws IOException {
                    return in.getPos();
                }

                @Override
                public void seek(long newPos) throws IOException {
                    in.seek(newPos);
                }
            };
        }
    }
}
