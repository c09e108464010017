Attribute VB_Name = "XE_Ribbon"
' Ribbon callbacks of the xl-expense add-in: one procedure per button of customUI.xml.
'
' Each button runs its own Python entry point in xl_expense.excel.macros through RunPython
' (the xlwings module of this add-in). The Python side finds the workbook with
' xw.Book.caller(), runs the same workflow as the CLI and shows the one-line result or
' error in a message box, so this module holds no business logic.
'
' Keep this file ASCII: the VBA project is stored in code page 1252. Chinese text is
' written as hex code points and decoded by Zh() at run time.
Option Explicit

' Audit (button 1): audit the ledger of the active workbook; the audit sheets are added to it.
Sub XE_RunAudit(control As IRibbonControl)
    ' The audit reads and writes the open workbook itself: it only needs one to be open.
    If Not WorkbookOpen() Then Exit Sub
    RunPython "import xl_expense.excel.macros as m; m.audit_active()"
End Sub

' Classify: give every expense row a category (writes <name>_classified.xlsx).
Sub XE_RunClassify(control As IRibbonControl)
    If Not ReadyToRun() Then Exit Sub
    RunPython "import xl_expense.excel.macros as m; m.classify_active()"
End Sub

' Fill budget: fill the active budget workbook from last year's ledger, chosen here.
Sub XE_RunFillBudget(control As IRibbonControl)
    Dim history As Variant
    If Not ReadyToRun() Then Exit Sub
    #If Mac Then
        ' Excel for Mac ignores or rejects Windows-style filters and titles.
        history = Application.GetOpenFilename()
    #Else
        history = Application.GetOpenFilename("Excel (*.xlsx;*.xlsm;*.xls;*.csv),*.xlsx;*.xlsm;*.xls;*.csv", _
                                              1, Zh("9009 62E9 53BB 5E74 7684 8D39 7528 53F0 8D26") & _
                                              " / Choose last year's ledger")
    #End If
    If VarType(history) = vbBoolean Then Exit Sub ' the user pressed Cancel
    RunPython "import xl_expense.excel.macros as m; m.fill_budget_active(" & PyString(CStr(history)) & ")"
End Sub

' Monitor: budget used %, forecasts and overrun alerts (writes <name>_monitored.xlsx).
Sub XE_RunMonitor(control As IRibbonControl)
    If Not ReadyToRun() Then Exit Sub
    RunPython "import xl_expense.excel.macros as m; m.monitor_active()"
End Sub

' Settings: show the settings the workflows will use and where they come from.
Sub XE_RunSettings(control As IRibbonControl)
    If Not ReadyToRun() Then Exit Sub
    RunPython "import xl_expense.excel.macros as m; m.settings_active()"
End Sub

' The workflows read the saved file: make sure there is one and that it is current.
Private Function WorkbookOpen() As Boolean
    WorkbookOpen = Not ActiveWorkbook Is Nothing
    If Not WorkbookOpen Then
        MsgBox Zh("8BF7 5148 6253 5F00 8981 5904 7406 7684 5DE5 4F5C 7C3F 3002") & vbLf & _
               "Open the workbook to work on first.", vbExclamation, "xl-expense"
    End If
End Function

' The file-based workflows (classify, budget) read the saved file: it must exist and be current.
Private Function ReadyToRun() As Boolean
    Dim answer As VbMsgBoxResult
    ReadyToRun = False
    If Not WorkbookOpen() Then Exit Function
    If ActiveWorkbook.Path = "" Then
        MsgBox Zh("8BF7 5148 4FDD 5B58 5DE5 4F5C 7C3F 3002") & vbLf & _
               "Save the workbook first: the workflows read the saved file.", vbExclamation, "xl-expense"
        Exit Function
    End If
    If Not ActiveWorkbook.Saved Then
        answer = MsgBox(Zh("5DE5 4F5C 7C3F 6709 672A 4FDD 5B58 7684 4FEE 6539 FF0C 662F 5426 5148 4FDD 5B58 FF1F " & _
                           "FF08 5BA1 8BA1 8BFB 53D6 5DF2 4FDD 5B58 7684 6587 4EF6 FF09") & vbLf & _
                        "The workbook has unsaved changes. Save them first? (The workflows read the saved file.)", _
                        vbYesNoCancel + vbQuestion, "xl-expense")
        If answer = vbCancel Then Exit Function
        If answer = vbYes Then ActiveWorkbook.Save
    End If
    ReadyToRun = True
End Function

' A Python string literal for text: backslashes and double quotes escaped.
Private Function PyString(ByVal text As String) As String
    PyString = """" & Replace(Replace(text, "\", "\\"), """", "\""") & """"
End Function

' Text from space-separated hexadecimal code points, e.g. Zh("8BBE 7F6E") for two characters.
Private Function Zh(ByVal codes As String) As String
    Dim part As Variant
    For Each part In Split(codes, " ")
        If Len(part) > 0 Then Zh = Zh & ChrW(CLng("&H" & part))
    Next part
End Function
