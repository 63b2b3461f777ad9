package io.meterflow.batch;

import java.io.IOException;
import java.util.Collections;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.Set;

import org.apache.flink.connector.base.source.reader.RecordsWithSplitIds;
import org.apache.iceberg.FileScanTask;
import org.apache.iceberg.Schema;
import org.apache.iceberg.encryption.EncryptionManager;
import org.apache.iceberg.encryption.InputFilesDecryptor;
import org.apache.iceberg.flink.source.reader.ReaderFunction;
import org.apache.iceberg.flink.source.reader.RecordAndPosition;
import org.apache.iceberg.flink.source.split.IcebergSourceSplit;
import org.apache.iceberg.io.CloseableIterator;
import org.apache.iceberg.io.FileIO;

/**
 * The Iceberg source's reader for the batch: each split's files as {@link ReadingBlock}s
 * ({@link LakeFiles}), one block per Flink record. A block's position is its file's index in the
 * split and the blocks before it in that file, so a restored split resumes where it stopped.
 */
final class LakeReaderFunction implements ReaderFunction<ReadingBlock> {
    private static final long serialVersionUID = 1L;

    private final DailyPlan plan;
    private final Schema table;
    private final FileIO io;
    private final EncryptionManager encryption;
    private transient LakeFiles.Strings strings;

    LakeReaderFunction(DailyPlan plan, Schema table, FileIO io, EncryptionManager encryption) {
        this.plan = plan;
        this.table = table;
        this.io = io;
        this.encryption = encryption;
    }

    @Override
    public CloseableIterator<RecordsWithSplitIds<RecordAndPosition<ReadingBlock>>> apply(IcebergSourceSplit split) {
        if (strings == null) {
            strings = new LakeFiles.Strings(plan);
        }
        return new SplitBlocks(split);
    }

    private final class SplitBlocks implements CloseableIterator<RecordsWithSplitIds<RecordAndPosition<ReadingBlock>>> {
        private final String splitId;
        private final List<FileScanTask> files;
        private final InputFilesDecryptor decryptor;
        private int fileOffset;
        private long recordOffset;
        private CloseableIterator<ReadingBlock> current;

        SplitBlocks(IcebergSourceSplit split) {
            this.splitId = split.splitId();
            this.files = List.copyOf(split.task().files());
            this.decryptor = new InputFilesDecryptor(split.task(), io, encryption);
            this.fileOffset = split.fileOffset();
            this.recordOffset = split.recordOffset();
        }

        @Override
        public boolean hasNext() {
            while (true) {
                if (current == null) {
                    if (fileOffset >= files.size()) {
                        return false;
                    }
                    FileScanTask task = files.get(fileOffset);
                    current = LakeFiles.blocks(task, decryptor.getInputFile(task), table, strings, recordOffset);
                }
                if (current.hasNext()) {
                    return true;
                }
                closeCurrent();
                fileOffset++;
                recordOffset = 0;
            }
        }

        @Override
        public RecordsWithSplitIds<RecordAndPosition<ReadingBlock>> next() {
            if (!hasNext()) {
                throw new NoSuchElementException();
            }
            ReadingBlock block = current.next();
            recordOffset++;
            return new OneBlock(splitId, new RecordAndPosition<>(block, fileOffset, recordOffset));
        }

        private void closeCurrent() {
            try {
                current.close();
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            } finally {
                current = null;
            }
        }

        @Override
        public void close() {
            if (current != null) {
                closeCurrent();
            }
        }
    }

    /** One block of one split (the split reader reports the split finished when the iterator ends). */
    private static final class OneBlock implements RecordsWithSplitIds<RecordAndPosition<ReadingBlock>> {
        private final String splitId;
        private RecordAndPosition<ReadingBlock> record;
        private boolean splitGiven;

        OneBlock(String splitId, RecordAndPosition<ReadingBlock> record) {
            this.splitId = splitId;
            this.record = record;
        }

        @Override
        public String nextSplit() {
            if (splitGiven) {
                return null;
            }
            splitGiven = true;
            return splitId;
        }

        @Override
        public RecordAndPosition<ReadingBlock> nextRecordFromSplit() {
            RecordAndPosition<ReadingBlock> out = record;
            record = null;
            return out;
        }

        @Override
        public Set<String> finishedSplits() {
            return Collections.emptySet();
        }
    }
}
